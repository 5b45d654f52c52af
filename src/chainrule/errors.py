"""The exceptions chainrule raises, in one place so users can catch them by name."""

from __future__ import annotations


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError):
    """An op got operands whose shapes do not fit; the message names the op and shapes."""


class AnomalyError(ChainruleError, FloatingPointError):
    """Under ``detect_anomaly()``, an op produced NaN or Inf in the forward or backward pass."""


class GradcheckError(ChainruleError, AssertionError):
    """Backprop disagreed with finite differences; ``report`` says where and by how much."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class NumpyOnTensorError(ChainruleError, TypeError):
    """A numpy function got a chainrule Tensor, which it cannot record for backprop.

    The message says what to use instead (chainrule's own functions, or
    :func:`chainrule.check_grad` for a plain numpy function).
    """


class NotARegularFileError(ChainruleError, OSError):
    """A path chainrule would read or write is a folder, device, FIFO or socket.

    Reading one could block forever (a FIFO) or never end (``/dev/zero``), and
    replacing one could destroy it, so chainrule refuses before opening it.
    """


class DTypeError(ChainruleError, TypeError, ValueError):
    """A dtype chainrule does not compute in: tensors are float32 or float64.

    A TypeError (as numpy's own dtype errors) and a ValueError (as other bad arguments
    to a network's constructor), so either ``except`` catches it.
    """

"""What fit raises before training (:class:`FitError` and its kinds) and warns during it."""

from __future__ import annotations

from ..errors import ChainruleError

__all__ = [
    "FitError",
    "FitSettingError",
    "LabelError",
    "LengthMismatchError",
    "NoProgressWarning",
    "NonFiniteInputError",
    "TrainingDivergedWarning",
]


class FitError(ChainruleError, ValueError):
    """Base class of the input and setting problems ``fit`` finds before training."""


class NonFiniteInputError(FitError):
    """The data holds NaN or Inf; the message counts them per column."""


class LabelError(FitError):
    """A target the loss cannot take: not 0/1 for a binary loss, not a class index."""


class LengthMismatchError(FitError):
    """X and y (or the validation X and y) have different numbers of rows."""


class FitSettingError(FitError):
    """A setting of ``fit`` is out of range: batch size, learning rate, epochs, ..."""


class TrainingDivergedWarning(UserWarning):
    """The loss blew up (NaN, Inf, or far above its start); training stopped early.

    The message names the epoch, the weights kept, and a smaller learning rate to try.
    ``History.diverged`` and ``History.stop_reason`` say the same for programs.
    """


class NoProgressWarning(UserWarning):
    """Training ended without learning: the loss stayed flat and every prediction is
    one class. The message suggests scaling the inputs or the Adam optimizer."""

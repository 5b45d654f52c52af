"""fit's compiled steps kept between fit calls on the same model.

Recording and planning a training step costs many steps' worth of time; a notebook
that runs ``fit(model, ...)`` again, a warm start or a benchmark calling fit in a loop
would pay it every time. :func:`kept_step` hands a fit the compiled :class:`TensorStep`
its model's previous fit left behind when that step computes exactly what this fit
would record: the same parameter tensors (same objects, in the same order), the same
loss on the same output (logits or not), weighting, weight decay and dtype. Anything
else (a parameter replaced, a layer added, another loss) records afresh. The optimizer
is this fit's own (the step is rebound to it), so a kept step trains bit for bit as a
freshly recorded one from the same weights.

A kept step does not keep its model alive: it is held by a weak reference to the
model, dropped with it, and at most :data:`KEPT_MODELS` models keep one. While a fit
runs, its step is taken out (a fit started from inside it, by a callback, records
its own). A model whose forward may read numbers other than its parameters (any
module but chainrule's own MLP with named activations, or a custom loss) gets its
programs verified again against an eager call on their first replay in each fit.
"""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._objective import BatchLoss, TensorStep

if TYPE_CHECKING:
    from ..optim import Optimizer
    from ..tensor import Tensor

__all__ = ["KEPT_MODELS", "kept_step"]

#: How many models keep their compiled step between fits (least recently used first out).
KEPT_MODELS = 8


@dataclass
class _Kept:
    model: weakref.ref[Any]
    parameters: tuple[Any, ...]
    recipe: tuple[Any, ...]
    loss_function: Callable[..., Any]
    step: TensorStep


# Keyed by id(model). Every access is one OrderedDict call, atomic under the GIL: no
# lock, which a weak-reference callback run by the garbage collector in the middle of
# another access could not take.
_kept: OrderedDict[int, _Kept] = OrderedDict()


def _recipe(loss: BatchLoss, on_logits: bool) -> tuple[Any, ...]:
    """What a recorded program depends on besides the parameters and the loss function."""
    objective = loss.objective
    return (on_logits, objective.name, objective.kind, loss.weighted, loss.weight_decay,
            np.dtype(loss.dtype).str)  # fmt: skip


def _reads_only_parameters(model: Any, loss: BatchLoss) -> bool:
    """Whether the step computes from the parameters and the batch alone: chainrule's own
    MLP with named activations, trained on one of fit's own losses."""
    from ..nn import MLP

    return (
        type(model) is MLP
        and all(isinstance(activation, str) for activation in model.activations)
        and loss.kind is not None
    )


def _forget(key: int, _: weakref.ref[Any]) -> None:
    """Drop a dead model's step (the weak reference's callback)."""
    _kept.pop(key, None)


def _take(model: Any) -> _Kept | None:
    entry = _kept.pop(id(model), None)
    if entry is not None and entry.model() is not model:
        return None
    return entry


def _keep(model: Any, entry: _Kept) -> None:
    _kept[id(model)] = entry
    while len(_kept) > KEPT_MODELS:
        try:
            _kept.popitem(last=False)
        except KeyError:  # emptied meanwhile by another thread
            break


@contextmanager
def kept_step(
    model: Any,
    parameters: Sequence[Tensor],
    forward: Callable[[np.ndarray], Tensor],
    loss: BatchLoss,
    optimizer: Optimizer,
    *,
    on_logits: bool,
) -> Iterator[TensorStep]:
    """The compiled step for this fit: the model's kept one if it fits, else a new one.

    The step is kept for the model's next fit when the block ends without an exception.

    Args:
        model: the model being trained (held weakly).
        parameters: ``model.parameters()``, as fit read them.
        forward: the forward fit trains (``model.forward_logits`` or ``model``).
        loss: this fit's batch loss.
        optimizer: this fit's optimizer.
        on_logits: whether ``forward`` gives the logits.
    """
    recipe = _recipe(loss, on_logits)
    entry = _take(model)
    if (
        entry is not None
        and entry.recipe == recipe
        and entry.loss_function is loss.objective.function
        and len(entry.parameters) == len(parameters)
        and all(kept is now for kept, now in zip(entry.parameters, parameters))
    ):
        step = entry.step
        step.rebind(forward, loss, optimizer,
                    check_again=not _reads_only_parameters(model, loss))  # fmt: skip
    else:
        step = TensorStep(forward, loss, optimizer, compiled=True)
        try:
            reference = weakref.ref(model, functools.partial(_forget, id(model)))
        except TypeError:  # a model that takes no weak references is not kept
            yield step
            return
        entry = _Kept(reference, tuple(parameters), recipe, loss.objective.function, step)
    yield step
    step.release()
    _keep(model, entry)

"""Activation functions by name, shared by the tensor-level and the neuron-level MLP.

Every entry of :data:`ACTIVATIONS` is a chainrule function, so it records its op in
the graph and works on a :class:`~chainrule.Tensor` and on a :class:`~chainrule.Value`
alike. The one exception is ``softmax``, which mixes the units of a layer: it takes a
Tensor (normalising along the last axis) or a whole layer given as a list of Values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import functions
from ..tensor import Tensor
from ..value import Value

Activation = Callable[[Any], Any]


def identity(x: Any) -> Any:
    """Return ``x`` unchanged (a linear unit); adds no node to the graph."""
    return x


def softmax(x: Any) -> Any:
    """eᶻ / Σ eᶻ over a layer: a Tensor along its last axis, or a list of Values.

    Args:
        x: a Tensor of shape (..., units), or the units of one layer as a sequence
            of Values (the neuron-level network). A single Value is refused: softmax
            needs the whole layer.
    """
    if isinstance(x, Tensor):
        return x.softmax(axis=-1)
    if isinstance(x, Value):
        raise TypeError(
            "softmax normalises over a whole layer: pass the list of the layer's Values "
            "(or a Tensor), not a single Value"
        )
    if isinstance(x, Sequence) and x and all(isinstance(unit, Value) for unit in x):
        return _softmax_values(x)
    raise TypeError(f"softmax takes a Tensor or a list of Values, not {type(x).__name__}")


def _softmax_values(units: Sequence[Value]) -> list[Value]:
    # Subtracting the largest input (a plain number, not a node) keeps exp from
    # overflowing and changes neither the result nor any gradient.
    peak = max(unit.data for unit in units)
    exps = [(unit - peak).exp() for unit in units]
    total = exps[0]
    for term in exps[1:]:
        total = total + term
    return [term / total for term in exps]


#: Activation functions by name. ``logistic`` and ``linear`` are scikit-learn's and
#: Keras's names for ``sigmoid`` and ``identity``.
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": functions.sigmoid,
    "logistic": functions.sigmoid,
    "tanh": functions.tanh,
    "relu": functions.relu,
    "softplus": functions.softplus,
    "identity": identity,
    "linear": identity,
    "softmax": softmax,
}

#: Activations that combine all units of a layer instead of acting on each unit.
LAYERWISE: frozenset[Activation] = frozenset({softmax})


def get_activation(activation: str | Activation | None) -> Activation:
    """The activation function for a name (``"tanh"``) or a callable (returned as is).

    Args:
        activation: a key of :data:`ACTIVATIONS` (case does not matter), a callable
            taking a Tensor or a Value, or ``None`` for the identity.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if activation is None:
        return identity
    if isinstance(activation, str):
        function = ACTIVATIONS.get(activation.strip().lower())
        if function is None:
            raise ValueError(
                f"unknown activation {activation!r}; known activations: "
                f"{', '.join(sorted(ACTIVATIONS))} (or pass a callable)"
            )
        return function
    if callable(activation):
        return activation
    raise TypeError(
        f"an activation is a name or a callable, not {type(activation).__name__}: {activation!r}"
    )


def activation_name(activation: str | Activation | None) -> str | None:
    """The canonical name of an activation, or ``None`` for a callable without one.

    Names are lower-cased and checked; a callable that is one of the functions in
    :data:`ACTIVATIONS` (``chainrule.tanh``) gets that function's first name.
    """
    if activation is None:
        return "identity"
    if isinstance(activation, str):
        get_activation(activation)
        return activation.strip().lower()
    for name, function in ACTIVATIONS.items():
        if function is activation:
            return name
    return None

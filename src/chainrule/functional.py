"""Gradient transforms and switches: grad, value_and_grad, no_grad, detect_anomaly."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .graph import grad_mode_set
from .tensor import Tensor, _as_float_array
from .value import Value


@contextmanager
def no_grad() -> Iterator[None]:
    """Within this block ops record no graph (evaluation, weight updates)."""
    with grad_mode_set(enabled=False):
        yield


@contextmanager
def enable_grad() -> Iterator[None]:
    """Record graphs again inside a ``no_grad()`` block."""
    with grad_mode_set(enabled=True):
        yield


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Within this block, the first op whose forward or backward produces NaN or Inf
    raises :class:`chainrule.AnomalyError` naming the op and its inputs' shapes.

    It checks every op's output, so it slows things down: use it to debug. Inside
    the block numpy's floating-point warnings are silenced: the error replaces them.
    """
    with grad_mode_set(detect_anomaly=True), np.errstate(all="ignore"):
        yield


def value_and_grad(
    f: Callable[..., Any], argnums: int | tuple[int, ...] = 0
) -> Callable[..., tuple[float, Any]]:
    """Transform ``f`` into a function returning ``(f(*args), ∂f/∂args[argnums])``.

    Args:
        f: a function of numbers and numpy arrays, written with chainrule's
            functions and operators, returning a single number.
        argnums: which positional argument(s) to differentiate with respect to; a
            tuple gives a tuple of gradients.

    Gradients come back as the kind of thing that went in: a float for a number,
    an array of the same shape for an array.
    """
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> tuple[float, Any]:
        call_args = list(args)
        leaves: list[Tensor] = []
        for position in positions:
            if position >= len(args):
                raise TypeError(
                    f"argnums={argnums} asks for argument {position}, but the function "
                    f"was called with {len(args)} positional arguments"
                )
            leaf = Tensor(_as_float_array(args[position]), requires_grad=True)
            leaves.append(leaf)
            call_args[position] = leaf
        with grad_mode_set(enabled=True):
            out = f(*call_args, **kwargs)
            value = _output_value(out)
            if isinstance(out, Tensor) and out.requires_grad:
                out.backward()
        grads = []
        for position, leaf in zip(positions, leaves):
            g = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
            grads.append(float(g) if np.ndim(args[position]) == 0 else np.asarray(g))
        return value, (grads[0] if isinstance(argnums, int) else tuple(grads))

    return wrapped


def grad(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """Transform ``f`` into a function returning ∂f/∂args[argnums] (see :func:`value_and_grad`)."""
    both = value_and_grad(f, argnums)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return both(*args, **kwargs)[1]

    return wrapped


def _output_value(out: Any) -> float:
    if isinstance(out, Value):
        raise TypeError(
            "grad/value_and_grad pass Tensors to the function, which returned a Value; "
            "build the function from chainrule functions and operators on its arguments"
        )
    data = out.data if isinstance(out, Tensor) else np.asarray(out)
    if np.size(data) != 1:
        raise TypeError(
            f"grad needs a function with a single-number output, this one returned shape "
            f"{np.shape(data)}; reduce it (e.g. .sum()) first"
        )
    return float(np.reshape(data, ()))

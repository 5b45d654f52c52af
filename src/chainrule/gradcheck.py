"""Finite-difference gradient checking: backprop against central differences in float64."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GradcheckError
from .functional import no_grad
from .tensor import Tensor, _as_float_array
from .value import Value


@dataclass(frozen=True)
class GradcheckResult:
    """What :func:`gradcheck` found. Truthy when every element agreed.

    ``worst_input`` and ``worst_index`` locate the element with the largest
    disagreement relative to the tolerance; ``analytic`` and ``numeric`` are the
    backprop and finite-difference gradients, one array per input.
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    worst_input: int
    worst_index: tuple[int, ...]
    analytic: tuple[np.ndarray, ...]
    numeric: tuple[np.ndarray, ...]
    report: str

    def __bool__(self) -> bool:
        return self.ok


def gradcheck(
    f: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_on_failure: bool = False,
) -> GradcheckResult:
    """Compare the backprop gradient of ``f`` with central differences, in float64.

    Args:
        f: a function of the inputs returning a Value or a Tensor. A Tensor output
            with more than one element is checked through a fixed random projection
            (every element of the Jacobian contributes).
        inputs: Values, Tensors, numpy arrays or numbers; each is differentiated.
        eps: the finite-difference step.
        atol, rtol: an element passes when |backprop − numeric| ≤ atol + rtol·|numeric|.
        raise_on_failure: raise :class:`chainrule.GradcheckError` with the report
            instead of returning a failing result.
    """
    if not inputs:
        raise TypeError("gradcheck needs at least one input to differentiate")
    kinds = [_kind(x) for x in inputs]
    bases = [_float64_data(x) for x in inputs]
    labels = [_label(x, i) for i, x in enumerate(inputs)]
    projection: list[np.ndarray | None] = [None]

    def scalar_output(arrays: list[np.ndarray]) -> tuple[Any, list[Any]]:
        leaves = [
            _make_leaf(kind, array, label) for kind, array, label in zip(kinds, arrays, labels)
        ]
        out = f(*leaves)
        if isinstance(out, Value):
            return out, leaves
        if not isinstance(out, Tensor):
            raise TypeError(
                f"gradcheck: f returned {type(out).__name__}; it must return a Value or a Tensor"
            )
        if out.data.size == 1:
            return out.sum(), leaves
        if projection[0] is None:
            projection[0] = np.random.default_rng(0).standard_normal(out.data.shape)
        return (out * projection[0]).sum(), leaves

    out, leaves = scalar_output(bases)
    out.backward()
    analytic = tuple(_leaf_grad(leaf, base) for leaf, base in zip(leaves, bases))

    numeric_grads = []
    with no_grad():
        for i, base in enumerate(bases):
            numeric = np.zeros_like(base)
            for index in np.ndindex(base.shape):
                shifted = [b.copy() for b in bases]
                shifted[i][index] = base[index] + eps
                plus = float(scalar_output(shifted)[0].data)
                shifted[i][index] = base[index] - eps
                minus = float(scalar_output(shifted)[0].data)
                numeric[index] = (plus - minus) / (2.0 * eps)
            numeric_grads.append(numeric)

    return _compare(analytic, tuple(numeric_grads), labels, atol, rtol, raise_on_failure)


def _compare(
    analytic: tuple[np.ndarray, ...],
    numeric: tuple[np.ndarray, ...],
    labels: list[str],
    atol: float,
    rtol: float,
    raise_on_failure: bool,
) -> GradcheckResult:
    max_abs = 0.0
    max_rel = 0.0
    # (input, index, error / allowed) of the element furthest outside its tolerance
    worst: tuple[int, tuple[int, ...], float] = (0, (), -np.inf)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        if a.size == 0:
            continue
        error = np.abs(a - n)
        error = np.where(np.isnan(error), np.inf, error)
        allowed = atol + rtol * np.abs(n)
        max_abs = max(max_abs, float(error.max()))
        max_rel = max(max_rel, float((error / np.maximum(np.abs(n), 1e-12)).max()))
        ratio = error / allowed
        flat = int(np.argmax(ratio))
        if ratio.flat[flat] > worst[2]:
            index = tuple(int(k) for k in np.unravel_index(flat, a.shape)) if a.ndim else ()
            worst = (i, index, float(ratio.flat[flat]))
    ok = worst[2] <= 1.0
    worst_input, worst_index, _ = worst
    lines = [
        f"gradcheck {'passed' if ok else 'FAILED'}: max abs error {max_abs:.3e}, "
        f"max rel error {max_rel:.3e} (atol={atol:g}, rtol={rtol:g})",
    ]
    for a, n, label in zip(analytic, numeric, labels):
        if a.size == 0:
            continue
        error = np.abs(a - n)
        bad = int(np.sum(~(error <= atol + rtol * np.abs(n))))
        lines.append(f"  {label}: shape {a.shape}, {bad} of {a.size} elements out of tolerance")
    index = worst_index
    if analytic[worst_input].size:
        a_value = float(analytic[worst_input][index])
        n_value = float(numeric[worst_input][index])
        where = f"{labels[worst_input]}{list(index) if index else ''}"
        lines.append(
            f"  worst: {where}: backprop {a_value:.10g}, finite differences {n_value:.10g}"
        )
    report = "\n".join(lines)
    result = GradcheckResult(ok, max_abs, max_rel, worst_input, index, analytic, numeric, report)
    if raise_on_failure and not ok:
        raise GradcheckError(report)
    return result


def _kind(x: Any) -> str:
    if isinstance(x, Value):
        return "value"
    if isinstance(x, Tensor):
        return "tensor"
    if isinstance(x, (int, float, np.floating, np.integer, np.ndarray, list, tuple)):
        return "tensor"
    raise TypeError(
        f"gradcheck inputs are Values, Tensors, arrays or numbers, not {type(x).__name__}"
    )


def _float64_data(x: Any) -> np.ndarray:
    data = x.data if isinstance(x, (Value, Tensor)) else x
    return np.array(_as_float_array(data), dtype=np.float64, copy=True)


def _label(x: Any, position: int) -> str:
    label = getattr(x, "label", None)
    return label if label else f"input {position}"


def _make_leaf(kind: str, array: np.ndarray, label: str) -> Any:
    if kind == "value":
        return Value(float(array), label=label)
    return Tensor(array, requires_grad=True, label=label)


def _leaf_grad(leaf: Any, base: np.ndarray) -> np.ndarray:
    if isinstance(leaf, Value):
        return np.asarray(leaf.grad, dtype=np.float64)
    if leaf.grad is None:
        return np.zeros_like(base)
    return np.asarray(leaf.grad, dtype=np.float64)

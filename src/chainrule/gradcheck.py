"""Finite-difference gradient checking: backprop against central differences in float64."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GradcheckError, NumpyOnTensorError, ShapeError
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
        try:
            out = f(*leaves)
        except TypeError as error:
            if _raised_by_numpy(error):
                raise NumpyOnTensorError(_NUMPY_ON_TENSOR.format(error=error)) from error
            raise
        if isinstance(out, Value):
            return out, leaves
        if isinstance(out, np.ndarray) and out.dtype == object:
            raise NumpyOnTensorError(
                "gradcheck: f returned a numpy array of chainrule objects: a numpy function "
                "(np.where, np.array, np.stack, …) packed Tensors into an array, which "
                "backprop cannot follow. " + _WHAT_TO_DO
            )
        if not isinstance(out, Tensor):
            raise TypeError(
                f"gradcheck: f returned {type(out).__name__}; it must return a Value or a "
                "Tensor (for a plain numpy function and your own gradient function, use "
                "chainrule.check_grad(f, grad_f, x))"
            )
        if out.data.size == 1:
            return out.sum(), leaves
        if projection[0] is None:
            projection[0] = np.random.default_rng(0).standard_normal(out.data.shape)
        return (out * projection[0]).sum(), leaves

    out, leaves = scalar_output(bases)
    out.backward()
    analytic = tuple(_leaf_grad(leaf, base) for leaf, base in zip(leaves, bases))

    with no_grad():
        numeric = _central_differences(
            lambda arrays: float(scalar_output(arrays)[0].data), bases, eps
        )
    return _compare(analytic, numeric, labels, atol, rtol, raise_on_failure)


def _central_differences(
    f: Callable[[list[np.ndarray]], float], bases: list[np.ndarray], eps: float
) -> tuple[np.ndarray, ...]:
    """∂f/∂(every element of every array), as (f(a + ε) − f(a − ε)) / 2ε, in float64.

    ``f`` gets private copies of ``bases``; one element at a time is shifted and put
    back, so ``bases`` themselves are never changed.
    """
    shifted = [base.copy() for base in bases]
    gradients = []
    for i, base in enumerate(bases):
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            shifted[i][index] = base[index] + eps
            plus = f(shifted)
            shifted[i][index] = base[index] - eps
            minus = f(shifted)
            shifted[i][index] = base[index]
            numeric[index] = (plus - minus) / (2.0 * eps)
        gradients.append(numeric)
    return tuple(gradients)


_WHAT_TO_DO = (
    "Inside f, use chainrule's functions on chainrule values — cr.tanh(x) or x.tanh(), "
    "cr.exp, cr.log, cr.sum(x) or x.sum(), cr.maximum, cr.where, x @ w — which record "
    "their partials for backprop. To check a function written in plain numpy against "
    "your own gradient function, use chainrule.check_grad(f, grad_f, x)."
)
_NUMPY_ON_TENSOR = (
    "gradcheck: f applied a numpy function to a chainrule Tensor ({error}). numpy "
    "computes on bare arrays and cannot record the op for backprop. " + _WHAT_TO_DO
)


def _raised_by_numpy(error: TypeError) -> bool:
    """Whether ``error`` comes from numpy refusing (or mishandling) a chainrule operand."""
    if "ufunc" in str(error):
        return True
    frame = error.__traceback__
    while frame is not None:
        # np.sum(t) calls t.sum(out=None): the TypeError is raised in chainrule, called
        # from numpy's own frames.
        if "/numpy/" in frame.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        frame = frame.tb_next
    return False


def _compare(
    analytic: tuple[np.ndarray, ...],
    numeric: tuple[np.ndarray, ...],
    labels: list[str],
    atol: float,
    rtol: float,
    raise_on_failure: bool,
    title: str = "gradcheck",
    analytic_name: str = "backprop",
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
        f"{title} {'passed' if ok else 'FAILED'}: max abs error {max_abs:.3e}, "
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
            f"  worst: {where}: {analytic_name} {a_value:.10g}, finite differences {n_value:.10g}"
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


# --- checking a gradient function written by hand ---------------------------------------


@dataclass(frozen=True)
class _Point:
    """A point ``x`` as float64 arrays with a label each, and how to rebuild ``x``'s shape.

    ``x`` is one number, one array (or nested lists of numbers), a list or tuple of
    arrays (one per layer, say), or a dict of arrays by name.
    """

    arrays: list[np.ndarray]
    labels: list[str]
    container: str  # "number", "array", "list", "tuple" or "dict"
    keys: tuple[Any, ...] = ()  # a dict's own keys

    @classmethod
    def of(cls, x: Any, what: str) -> _Point:
        if isinstance(x, dict):
            arrays = [_float64_array(v, f"{what}[{k!r}]") for k, v in x.items()]
            return cls(arrays, [str(key) for key in x], "dict", tuple(x))
        if isinstance(x, (list, tuple)) and x and all(isinstance(v, np.ndarray) for v in x):
            labels = [f"{what}[{i}]" for i in range(len(x))]
            arrays = [_float64_array(v, label) for v, label in zip(x, labels)]
            return cls(arrays, labels, type(x).__name__)
        array = _float64_array(x, what)
        kind = "number" if isinstance(x, (numbers.Real, np.number)) else "array"
        return cls([array], [what], kind)

    def rebuild(self, arrays: list[np.ndarray]) -> Any:
        """``x``'s own form (a float, an array, a list, tuple or dict) over ``arrays``."""
        if self.container == "number":
            return float(arrays[0])
        if self.container == "array":
            return arrays[0]
        if self.container == "dict":
            return dict(zip(self.keys, arrays))
        return list(arrays) if self.container == "list" else tuple(arrays)

    def split(self, gradient: Any) -> tuple[np.ndarray, ...]:
        """``grad_f``'s answer as one float64 array per array of the point, shapes checked."""
        if self.container == "dict":
            if not isinstance(gradient, dict) or set(map(str, gradient)) != set(self.labels):
                got = (
                    ", ".join(sorted(map(str, gradient)))
                    if isinstance(gradient, dict)
                    else type(gradient).__name__
                )
                raise ShapeError(
                    "check_grad: grad_f must return a dict with the keys of x "
                    f"({', '.join(self.labels)}), got {got}"
                )
            parts = [gradient[key] for key in self.keys]
        elif self.container in ("list", "tuple"):
            if not isinstance(gradient, (list, tuple)) or len(gradient) != len(self.arrays):
                size = len(gradient) if isinstance(gradient, (list, tuple)) else None
                raise ShapeError(
                    f"check_grad: x holds {len(self.arrays)} arrays, so grad_f must return a "
                    f"list of {len(self.arrays)} gradients, one per array; it returned "
                    + (f"{size}" if size is not None else type(gradient).__name__)
                )
            parts = list(gradient)
        else:
            parts = [gradient]
        arrays = []
        for part, base, label in zip(parts, self.arrays, self.labels):
            array = _float64_array(part, f"grad_f's gradient for {label}")
            if array.shape != base.shape:
                raise ShapeError(
                    f"check_grad: grad_f returned shape {array.shape} for {label}, which has "
                    f"shape {base.shape}; a gradient has the shape of what it differentiates"
                    + (" (is it transposed?)" if array.shape == base.shape[::-1] else "")
                )
            arrays.append(array)
        return tuple(arrays)


def _float64_array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, (Value, Tensor)):
        x = x.data
    try:
        array = np.array(x, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise TypeError(
            f"check_grad: {what} must be numbers or a numpy array, not {type(x).__name__}"
        ) from None
    return array


def _loss_number(value: Any) -> float:
    data = value.data if isinstance(value, (Value, Tensor)) else value
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"check_grad: f must return one number (the loss), not {type(value).__name__}"
        ) from None
    if array.size != 1:
        raise ShapeError(
            f"check_grad: f must return one number (the loss); it returned shape "
            f"{array.shape}: sum or average it over the examples"
        )
    return float(array.reshape(-1)[0])


def numerical_grad(f: Callable[..., Any], x: Any, *args: Any, eps: float = 1e-6) -> Any:
    """The gradient of a function returning one number, by central differences in float64.

    No chainrule types are needed: ``f`` may be plain Python or numpy.

    Args:
        f: called as ``f(x, *args)``; returns one number (a float, a one-element array,
            or a chainrule Value or Tensor).
        x: the point: a number, an array (or nested lists of numbers), a list or tuple
            of arrays (e.g. one weight matrix per layer) or a dict of arrays by name.
        args: passed on to ``f`` unchanged (data, labels).
        eps: the step ε of (f(x + ε) − f(x − ε)) / 2ε, element by element.

    Returns:
        ∂f/∂x in the form of ``x``: a float, an array, a list, tuple or dict of arrays.
    """
    point = _Point.of(x, "x")
    gradients = _central_differences(
        lambda arrays: _loss_number(f(point.rebuild(arrays), *args)), point.arrays, eps
    )
    return point.rebuild(list(gradients))


def check_grad(
    f: Callable[..., Any],
    grad_f: Callable[..., Any],
    x: Any,
    *args: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_on_failure: bool = False,
) -> GradcheckResult:
    """Check your own gradient function against central differences of ``f``.

    For a loss and a backprop written by hand in plain Python or numpy (the
    assignment's "going beyond"): no chainrule types are needed.

    Args:
        f: called as ``f(x, *args)``; returns one number, the loss.
        grad_f: called as ``grad_f(x, *args)``; returns ∂f/∂x in the form of ``x``
            (an array of ``x``'s shape; a list of arrays for a list; a dict for a dict).
        x: the point: a number, an array, a list or tuple of arrays (one per layer,
            say) or a dict of arrays by name (the names appear in the report).
        args: passed on to both functions unchanged (inputs, labels).
        eps: the finite-difference step.
        atol, rtol: an element passes when |grad_f − numeric| ≤ atol + rtol·|numeric|.
        raise_on_failure: raise :class:`chainrule.GradcheckError` with the report
            instead of returning a failing result.

    Returns:
        a :class:`GradcheckResult` (truthy when every element agrees) whose ``report``
        names the worst element, e.g. ``worst: x[0][1, 2]: grad_f 0.31, finite
        differences 0.07``; ``analytic`` holds grad_f's arrays, ``numeric`` the others.

    Raises:
        ShapeError: if grad_f's answer does not have the form and shapes of ``x``.
    """
    point = _Point.of(x, "x")
    analytic = point.split(grad_f(point.rebuild([a.copy() for a in point.arrays]), *args))
    numeric = _central_differences(
        lambda arrays: _loss_number(f(point.rebuild(arrays), *args)), point.arrays, eps
    )
    return _compare(
        analytic,
        numeric,
        point.labels,
        atol,
        rtol,
        raise_on_failure,
        title="check_grad",
        analytic_name="grad_f",
    )

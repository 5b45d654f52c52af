"""Optimizers: gradient descent (with optional momentum) and Adam.

The loop is PyTorch's::

    optimizer = chainrule.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(100):
        optimizer.zero_grad()
        loss = chainrule.nn.mse_loss(model(X), y)
        loss.backward()
        optimizer.step()

``step()`` changes each parameter's data in place with numpy (Tensors) or
reassigns it (Values, whose grad is a float); it reads ``grad`` and never writes
into it. Parameters whose grad is None (nothing reached them) are skipped.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .tensor import Tensor
from .value import Value

Parameter = Tensor | Value

#: Adam updates parameters with at least this many elements through scratch arrays.
_SCRATCH_FROM = 4096


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return number


def _in_unit_interval(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{what} must lie in [0, 1), got {value!r}")
    return number


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{what} must be a finite number ≥ 0, got {value!r}")
    return number


def _collect(params: Any) -> list[Parameter]:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()  # a Module: optimize all of it
    if isinstance(params, (Tensor, Value)):
        raise TypeError(
            "an optimizer takes a list of parameters (e.g. model.parameters()), "
            "not a single Tensor or Value; wrap it in a list"
        )
    if not isinstance(params, Iterable):
        raise TypeError(f"an optimizer takes an iterable of parameters, not {params!r}")
    collected: list[Parameter] = []
    seen: set[int] = set()
    for index, param in enumerate(params):
        if not isinstance(param, (Tensor, Value)):
            raise TypeError(
                f"parameter {index} is a {type(param).__name__}; optimizers update "
                "Tensors and Values"
            )
        if param.op is not None:
            raise ValueError(
                f"parameter {index} is the result of an op ({param.op.name}), not a leaf: "
                "optimize the leaves it was computed from"
            )
        if id(param) in seen:
            raise ValueError(f"parameter {index} appears more than once in the list")
        seen.add(id(param))
        collected.append(param)
    if not collected:
        raise ValueError("the optimizer got an empty parameter list")
    return collected


def _gradient(param: Parameter) -> np.ndarray | None:
    """The parameter's gradient as an array (a 0-d float64 array for a Value)."""
    if isinstance(param, Value):
        return np.asarray(float(param.grad))
    return None if param.grad is None else np.asarray(param.grad)


def _data(param: Parameter) -> np.ndarray:
    if isinstance(param, Value):
        return np.asarray(param.data)
    return param.data


def _subtract(param: Parameter, step: np.ndarray) -> None:
    """param ← param − step, in place for a writable array."""
    if isinstance(param, Value):
        param.data = float(param.data - step)
    elif param.data.flags.writeable:
        param.data -= step
    else:
        param.data = param.data - step


class Optimizer:
    """Base class: holds ``params`` and ``lr``; subclasses define ``_step_size``.

    Args:
        params: the parameters to update: a list of Tensors or Values, or a Module.
        lr: the learning rate η > 0 (settable later: ``optimizer.lr = 0.01``).
    """

    def __init__(self, params: Iterable[Parameter] | Any, lr: float) -> None:
        self.params = _collect(params)
        self.lr = lr
        # Per-parameter state (momentum buffers, Adam moments), parallel to params.
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        # Scratch arrays of the in-place update, by parameter (see _scratch).
        self._scratch_views: list[list[np.ndarray] | None] = [None for _ in self.params]
        self._scratch_buffers: dict[np.dtype, np.ndarray] = {}

    @property
    def lr(self) -> float:
        """The learning rate η."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _positive(value, "lr (the learning rate)")

    def zero_grad(self) -> None:
        """Forget the gradients: Tensor grads become None, Value grads 0."""
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        """Update every parameter that has a gradient, using its ``grad``."""
        for index, (param, state) in enumerate(zip(self.params, self.state)):
            grad = param.grad
            if grad is None:
                continue
            data = param.data
            # The common case, a Tensor with an array grad and a writeable array, without
            # the general path's conversions; the same numpy operations, so the same bits.
            if type(grad) is np.ndarray and type(data) is np.ndarray and data.flags.writeable:
                self._update(data, grad, state, index)
                continue
            gradient = _gradient(param)
            assert gradient is not None  # a None grad was skipped above
            _subtract(param, self._step_size(gradient, _data(param), state))

    def _step_size(self, grad: np.ndarray, data: np.ndarray, state: dict[str, Any]) -> Any:
        """The amount to subtract from ``data`` (a new array; ``state`` may change)."""
        raise NotImplementedError

    def _update(
        self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any], index: int
    ) -> None:
        """data ← data − step, in place, for a writeable array and an array grad;
        optimizers may override it with in-place numpy calls that give the same bits."""
        data -= self._step_size(grad, data, state)

    def _scratch(self, index: int, data: np.ndarray, count: int) -> list[np.ndarray]:
        """``count`` scratch arrays shaped like parameter ``index``'s data, kept between
        steps. They are views of one buffer per dtype that every parameter shares (the
        updates run one after another), so the scratch costs about the largest parameter
        ``count`` times over, not a copy of every parameter."""
        views = self._scratch_views[index]
        if views is None or views[0].shape != data.shape or views[0].dtype != data.dtype:
            size = data.size
            buffer = self._scratch_buffers.get(data.dtype)
            if buffer is None or buffer.size < count * size:
                largest = max(
                    [size]
                    + [
                        p.data.size
                        for p in self.params
                        if isinstance(p, Tensor) and p.data.dtype == data.dtype
                    ]
                )
                buffer = self._scratch_buffers[data.dtype] = np.empty(count * largest, data.dtype)
            views = self._scratch_views[index] = [
                buffer[k * size : (k + 1) * size].reshape(data.shape) for k in range(count)
            ]
        return views

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr:g})"


class SGD(Optimizer):
    """Gradient descent: w ← w − η·∇L, with optional momentum and weight decay.

    Args:
        params: the parameters (a list, or a Module).
        lr: the step size η > 0.
        momentum: μ in [0, 1). With μ > 0 the step follows a velocity
            v ← μ·v + g (PyTorch's form; v starts at the first gradient).
        weight_decay: λ ≥ 0 adds λ·w to the gradient (L2 regularisation).

    With momentum 0 and no weight decay one step is exactly w − η·∇L.
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Any,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _in_unit_interval(momentum, "momentum")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def _step_size(self, grad: np.ndarray, data: np.ndarray, state: dict[str, Any]) -> Any:
        if self.weight_decay:
            grad = grad + self.weight_decay * data
        if self.momentum:
            velocity = state.get("velocity")
            if velocity is None:
                # A copy: the velocity is updated in place and must never alias grad.
                velocity = state["velocity"] = np.array(grad, copy=True)
            else:
                velocity *= self.momentum
                velocity += grad
            grad = velocity
        return self._lr * grad  # the attribute, not the checked property: runs per parameter

    def _update(
        self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any], index: int
    ) -> None:
        if self.momentum or self.weight_decay:
            data -= self._step_size(grad, data, state)
        else:
            data -= self._lr * grad  # _step_size's plain case, without its call


def _next_moments(state: dict[str, Any], data: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Adam's step count t (advanced by one) and its moment arrays m, v (zero at first)."""
    if not state:
        state["t"] = 0
        state["m"] = np.zeros_like(data)
        state["v"] = np.zeros_like(data)
    state["t"] += 1
    return state["t"], state["m"], state["v"]


class Adam(Optimizer):
    """Adam (Kingma & Ba): steps scaled by running moments of the gradient.

    Args:
        params: the parameters (a list, or a Module).
        lr: the step size η > 0.
        betas: decay rates (β₁, β₂) in [0, 1) of the first and second moments.
        eps: ε > 0 added to the denominator.
        weight_decay: λ ≥ 0 adds λ·w to the gradient (L2, as PyTorch's Adam).

    Per step t: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², and
    w ← w − η·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas is a pair (β₁, β₂), got {betas!r}")
        self.betas = (
            _in_unit_interval(betas[0], "betas[0]"),
            _in_unit_interval(betas[1], "betas[1]"),
        )
        self.eps = _positive(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def _step_size(self, grad: np.ndarray, data: np.ndarray, state: dict[str, Any]) -> Any:
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * data
        t, m, v = _next_moments(state, data)
        m *= beta1
        m += (1.0 - beta1) * grad
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        m_hat = m / (1.0 - beta1**t)
        v_hat = v / (1.0 - beta2**t)
        return self._lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def _update(
        self, data: np.ndarray, grad: np.ndarray, state: dict[str, Any], index: int
    ) -> None:
        if data.size < _SCRATCH_FROM or grad.shape != data.shape or grad.dtype != data.dtype:
            # Small arrays: numpy allocates temporaries faster than it parses out=.
            data -= self._step_size(grad, data, state)
            return
        # _step_size's operations, in its order, into two scratch arrays: large
        # temporaries cost more to allocate (fresh pages) than to compute.
        first, second = self._scratch(index, data, 2)
        beta1, beta2 = self.betas
        if self.weight_decay:
            np.multiply(data, self.weight_decay, out=first)
            grad = np.add(grad, first, out=first)
        t, m, v = _next_moments(state, data)
        m *= beta1
        m += np.multiply(grad, 1.0 - beta1, out=second)
        np.multiply(grad, grad, out=second)
        v *= beta2
        v += np.multiply(second, 1.0 - beta2, out=second)
        np.divide(m, 1.0 - beta1**t, out=first)  # m̂ (grad is not read again)
        np.divide(v, 1.0 - beta2**t, out=second)  # v̂
        np.multiply(first, self._lr, out=first)
        np.sqrt(second, out=second)
        np.add(second, self.eps, out=second)
        np.divide(first, second, out=first)
        np.subtract(data, first, out=data)

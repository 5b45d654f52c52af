"""chainrule against a hand-written numpy step and its peers, one training step each.

Every side runs the workloads of ``workloads.py`` from the same weights and data: it
must reproduce the same first loss (checked, so all sides do the same work), then its
training step (forward + loss + backward + SGD update) is timed. Repetitions are
interleaved (each round times every side once, in a shuffled order) and the table gives
medians in milliseconds and ratios to the hand-written numpy step from the same run.

Sides (each optional: a missing package is skipped with a note): hand numpy; the
matrix products alone (the BLAS limit, printed as each row's floor with every side's
ratio to it); chainrule eager; chainrule compiled (``chainrule.compile(loss,
optimizer=sgd)``); chainrule compile(step) (``chainrule.compile(train_step)``, the form
that wraps a whole eager step); chainrule fit (``chainrule.fit``, per training step:
each call a whole fit on the same model, so a later fit's set-up is spread over its
epochs; the first fit of a fresh model is timed apart in its own table); PyTorch
eager; torch.compile; JAX jit; HIPS autograd; scikit-learn's MLP ``partial_fit``; and
on the small rows the scalar engines: micrograd and chainrule's Value (one node per
scalar, row by row).

Usage::

    python benchmarks/bench_peers.py                    # everything, both dtypes
    python benchmarks/bench_peers.py --workloads tanh-16,mnist --dtypes float32
    python benchmarks/bench_peers.py --memory           # peak memory per step too

The script re-executes itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from workloads import (
    BLAS_VARIABLES,
    Workload,
    format_ms,
    import_time,
    machine_description,
    median,
    reexec_without_blas_overrides,
    time_once,
    workloads_named,
)


@dataclass
class Side:
    """A framework set up on one workload: ``step()`` runs one training step and
    returns its loss (the first call's loss is checked against the other sides')."""

    step: Callable[[], Any]
    traced_memory: bool = True  # whether tracemalloc sees its allocations
    describe: Callable[[], str] = lambda: ""
    steps_per_call: int = 1  # training steps one call of ``step`` runs (fit: several)
    # One-time costs timed apart from the steps (fit: a first and a later fit), seconds.
    setup: Callable[[], dict[str, float]] | None = None


# --- hand-written numpy -----------------------------------------------------------------


def _activation_pair(
    name: str,
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """(activation, its derivative written in terms of the activation's output)."""
    if name == "sigmoid":
        return (lambda z: 1.0 / (1.0 + np.exp(-z))), (lambda a: a * (1.0 - a))
    if name == "tanh":
        return np.tanh, (lambda a: 1.0 - a * a)
    return (lambda z: np.maximum(z, 0.0)), (lambda a: a > 0)


def make_numpy(workload: Workload, dtype: Any) -> Side:
    """A step as a person would write it in numpy: forward, closed-form backward, SGD."""
    x, y = workload.data(dtype)
    layers = [(w.copy(), b.copy()) for w, b in workload.weights(dtype)]
    act, act_grad = _activation_pair(workload.activation)
    lr, n, last = workload.lr, workload.batch, len(layers) - 1
    if workload.loss == "cross_entropy":
        one_hot = np.zeros((n, workload.sizes[-1]), dtype)
        one_hot[np.arange(n), y] = 1

    def step() -> float:
        outputs = [x]
        h = x
        for k, (weight, bias) in enumerate(layers):
            h = h @ weight.T + bias
            if k < last:
                h = act(h)
                outputs.append(h)
        if workload.loss == "log_loss":
            p = 1.0 / (1.0 + np.exp(-h))
            loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            delta = (p - y) / n
        elif workload.loss == "mse":
            diff = h - y
            loss = np.mean(diff * diff)
            delta = diff * (2.0 / diff.size)
        else:
            shifted = h - h.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            total = e.sum(axis=1, keepdims=True)
            loss = -np.mean((shifted - np.log(total))[np.arange(n), y])
            delta = (e / total - one_hot) / n
        for k in range(last, -1, -1):
            weight, bias = layers[k]
            grad_weight = delta.T @ outputs[k]
            grad_bias = delta.sum(axis=0)
            if k:
                delta = (delta @ weight) * act_grad(outputs[k])
            weight -= lr * grad_weight
            bias -= lr * grad_bias
        return float(loss)

    return Side(step)


def make_blas_limit(workload: Workload, dtype: Any) -> Side:
    """Only the step's matrix products (one forward, two backward per layer), written
    into preallocated arrays: the floor no framework built on this BLAS can go below."""
    x, _ = workload.data(dtype)
    layers = workload.weights(dtype)
    acts = [x] + [np.ones((workload.batch, w.shape[0]), dtype) for w, _ in layers]
    products = []
    for k, (weight, _) in enumerate(layers):
        products.append((acts[k], weight.T, np.empty((workload.batch, weight.shape[0]), dtype)))
        products.append((acts[k + 1].T, acts[k], np.empty(weight.shape, dtype)))
        if k:
            products.append((acts[k + 1], weight, np.empty(acts[k].shape, dtype)))

    def step() -> None:
        for left, right, out in products:
            np.matmul(left, right, out=out)

    return Side(step)


# --- chainrule --------------------------------------------------------------------------


def chainrule_loss_function(workload: Workload, params: list[Any]) -> Callable[..., Any]:
    """The step's loss with chainrule Tensors: ``loss(x, y)`` for arrays x, y (for the
    cross-entropy, y is the one-hot target, made once like the numpy side's)."""
    import chainrule as cr

    last = len(params) // 2 - 1
    scale = 1.0 / workload.batch

    def loss(x: np.ndarray, y: np.ndarray) -> Any:
        h = cr.tensor(x)
        for k in range(last + 1):
            h = h @ params[2 * k].T + params[2 * k + 1]
            if k < last:
                h = getattr(h, workload.activation)()
        target = cr.tensor(y)  # so that 1 - y below is a Tensor op, not a numpy one
        if workload.loss == "log_loss":
            p = h.sigmoid()
            return -(target * p.log() + (1 - target) * (1 - p).log()).mean()
        if workload.loss == "mse":
            diff = h - target
            return (diff * diff).mean()
        return -(h.log_softmax(axis=-1) * target).sum() * scale

    return loss


def _chainrule_setup(workload: Workload, dtype: Any) -> tuple[Any, Any, Any, Any, Any]:
    import chainrule as cr

    params = []
    for weight, bias in workload.weights(dtype):
        params += [
            cr.tensor(weight.copy(), requires_grad=True),
            cr.tensor(bias.copy(), requires_grad=True),
        ]
    optimizer = cr.optim.SGD(params, lr=workload.lr)
    x, y = workload.data(dtype)
    if workload.loss == "cross_entropy":
        one_hot = np.zeros((workload.batch, workload.sizes[-1]), dtype)
        one_hot[np.arange(workload.batch), y] = 1
        y = one_hot
    return cr, params, optimizer, x, y


def chainrule_train_step(optimizer: Any, loss_of: Callable[..., Any]) -> Callable[..., Any]:
    """The eager training step ``train_step(x, y)`` a user writes: zero_grad, the loss,
    backward and the optimizer's step; it returns the loss Tensor."""

    def train_step(xb: np.ndarray, yb: np.ndarray) -> Any:
        optimizer.zero_grad()
        loss = loss_of(xb, yb)
        loss.backward()
        optimizer.step()
        return loss

    return train_step


def make_chainrule_eager(workload: Workload, dtype: Any) -> Side:
    """chainrule Tensors, eager: a graph built and walked every step."""
    _, params, optimizer, x, y = _chainrule_setup(workload, dtype)
    train_step = chainrule_train_step(optimizer, chainrule_loss_function(workload, params))

    def step() -> float:
        return train_step(x, y).item()

    return Side(step)


def make_chainrule_compiled(workload: Workload, dtype: Any) -> Side:
    """chainrule.compile(loss, optimizer=sgd): recorded once, replayed into buffers."""
    cr, params, optimizer, x, y = _chainrule_setup(workload, dtype)
    compiled = cr.compile(chainrule_loss_function(workload, params), optimizer=optimizer)

    def step() -> float:
        return compiled(x, y).item()

    def describe() -> str:
        if compiled.stats.flat_replays:
            return ""
        return f"replays without the flat form: {compiled.stats.notes}"

    return Side(step, describe=describe)


def make_chainrule_compiled_step(workload: Workload, dtype: Any) -> Side:
    """chainrule.compile(train_step): the first form, wrapping a whole eager step."""
    cr, params, optimizer, x, y = _chainrule_setup(workload, dtype)
    loss_of = chainrule_loss_function(workload, params)
    compiled = cr.compile(chainrule_train_step(optimizer, loss_of))

    def step() -> float:
        return compiled(x, y).item()

    def describe() -> str:
        stats = compiled.stats
        if stats.eager_calls or stats.divergences:
            return f"eager calls {stats.eager_calls}, divergences {stats.divergences}"
        return ""

    return Side(step, describe=describe)


#: Epochs (one step each) per call of the ``chainrule.fit`` side. Every call is a whole
#: fit on the same model (its checks, its loop, the step the model kept from its first
#: fit), so the per-step figure carries 1/epochs of a later fit's set-up, as a user's
#: run of that many epochs would. 3→2→1 runs the Titanic experiment's 1,500 epochs.
#: The first fit of a fresh model (recording and planning the step) is timed apart.
FIT_EPOCHS = {"titanic": 1500, "large": 4}
FIT_EPOCHS_DEFAULT = 20
#: Fresh models whose first fit (one epoch) is timed for the set-up table.
SETUP_MODELS = 7


def fit_epochs(workload: Workload) -> int:
    """Epochs per call of the fit side on this workload."""
    return FIT_EPOCHS.get(workload.name, FIT_EPOCHS_DEFAULT)


def make_chainrule_fit(workload: Workload, dtype: Any) -> Side:
    """chainrule.fit on an nn.MLP with the same weights: one batch per epoch, no
    shuffling, SGD; timed per training step (each call runs fit_epochs(workload)
    epochs), its set-up (a first and a later one-epoch fit) timed apart."""
    import chainrule as cr
    from chainrule import nn

    output = "sigmoid" if workload.loss == "log_loss" else None
    x, y = workload.data(dtype)
    loss = {"log_loss": "log_loss", "mse": "mse", "cross_entropy": "cross_entropy"}[workload.loss]

    def new_model() -> Any:
        model = nn.MLP(
            list(workload.sizes),
            activation=workload.activation,
            output_activation=output,
            dtype=np.dtype(dtype).name,
        )
        weights = [a for pair in workload.weights(dtype) for a in pair]
        for param, value in zip(model.parameters(), weights, strict=True):
            param.data[...] = value
        return model

    def train(model: Any, epochs: int) -> Any:
        return cr.fit(model, x, y, loss=loss, optimizer="sgd", lr=workload.lr, epochs=epochs,
                      batch_size=workload.batch, shuffle=False, progress=False)  # fmt: skip

    model = new_model()
    first: list[float] = []
    epochs = fit_epochs(workload)

    def step() -> float:
        history = train(model, epochs)
        if not first:
            first.append(float(history.loss[0]))
        return first[0]

    def setup() -> dict[str, float]:
        """Median seconds of a fresh model's first one-epoch fit, its second and its third."""
        fresh, later, steady = [], [], []
        for _ in range(SETUP_MODELS):
            model = new_model()
            fresh.append(time_once(lambda: train(model, 1), 1))  # noqa: B023
            later.append(time_once(lambda: train(model, 1), 1))  # noqa: B023
            steady.append(time_once(lambda: train(model, 1), 1))  # noqa: B023
        return {"first fit": median(fresh), "later fit": median(later), "third fit": median(steady)}

    return Side(step, steps_per_call=epochs, setup=setup)


# --- PyTorch ------------------------------------------------------------------------------


def _torch_model(workload: Workload, dtype: Any) -> tuple[Any, Any, Any, Any, Any]:
    import torch

    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    modules: list[Any] = []
    weights = workload.weights(dtype)
    activation = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
    for k, (weight, bias) in enumerate(weights):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], dtype=torch_dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
        modules.append(linear)
        if k < len(weights) - 1:
            modules.append(activation[workload.activation]())
    if workload.loss == "log_loss":
        modules.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*modules)
    loss_fn = {
        "log_loss": torch.nn.BCELoss(),
        "mse": torch.nn.MSELoss(),
        "cross_entropy": torch.nn.CrossEntropyLoss(),
    }[workload.loss]
    x, y = workload.data(dtype)
    return torch, model, loss_fn, torch.from_numpy(x), torch.from_numpy(y)


def make_torch(workload: Workload, dtype: Any) -> Side:
    """PyTorch eager: nn.Sequential, a loss module, torch.optim.SGD."""
    torch, model, loss_fn, x, y = _torch_model(workload, dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=workload.lr)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return Side(step, traced_memory=False)


def make_torch_compile(workload: Workload, dtype: Any) -> Side:
    """torch.compile of the model and loss (inductor, CPU), eager optimizer step."""
    torch, model, loss_fn, x, y = _torch_model(workload, dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=workload.lr)
    forward = torch.compile(lambda xb, yb: loss_fn(model(xb), yb))

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = forward(x, y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return Side(step, traced_memory=False)


# --- JAX ------------------------------------------------------------------------------------


def make_jax(workload: Workload, dtype: Any) -> Side:
    """JAX: one jitted function computing the loss, its gradient and the SGD update."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in workload.weights(dtype)]
    x_np, y_np = workload.data(dtype)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    act = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[workload.activation]
    last, lr = len(params) - 1, workload.lr

    def loss_of(ps: Any, xb: Any, yb: Any) -> Any:
        h = xb
        for k, (w, b) in enumerate(ps):
            h = h @ w.T + b
            if k < last:
                h = act(h)
        if workload.loss == "log_loss":
            p = jax.nn.sigmoid(h)
            return -jnp.mean(yb * jnp.log(p) + (1 - yb) * jnp.log(1 - p))
        if workload.loss == "mse":
            return jnp.mean((h - yb) ** 2)
        log_p = jax.nn.log_softmax(h, axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_p, yb[:, None], axis=1))

    @jax.jit
    def train(ps: Any, xb: Any, yb: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_of)(ps, xb, yb)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, ps, grads), loss

    state = [params]

    def step() -> float:
        state[0], loss = train(state[0], x, y)
        return float(loss)  # waits for the result

    return Side(step, traced_memory=False)


# --- HIPS autograd --------------------------------------------------------------------------


def make_autograd(workload: Workload, dtype: Any) -> Side:
    """HIPS autograd: value_and_grad of a numpy-style loss, in-place SGD."""
    import autograd.numpy as anp
    from autograd import value_and_grad

    params = [p.copy() for layer in workload.weights(dtype) for p in layer]
    x, y = workload.data(dtype)
    last, n = len(params) // 2 - 1, workload.batch
    act = {
        "sigmoid": lambda z: 1.0 / (1.0 + anp.exp(-z)),
        "tanh": anp.tanh,
        "relu": lambda z: anp.maximum(z, 0.0),
    }[workload.activation]

    def loss_of(ps: list[Any]) -> Any:
        h = x
        for k in range(last + 1):
            h = anp.dot(h, ps[2 * k].T) + ps[2 * k + 1]
            if k < last:
                h = act(h)
        if workload.loss == "log_loss":
            p = 1.0 / (1.0 + anp.exp(-h))
            return -anp.mean(y * anp.log(p) + (1 - y) * anp.log(1 - p))
        if workload.loss == "mse":
            return anp.mean((h - y) ** 2)
        shifted = h - anp.max(h, axis=1, keepdims=True)
        log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.mean(log_p[anp.arange(n), y])

    gradient = value_and_grad(loss_of)

    def step() -> float:
        loss, grads = gradient(params)
        for p, g in zip(params, grads):
            p -= workload.lr * g
        return float(loss)

    return Side(step)


# --- scikit-learn ---------------------------------------------------------------------------


def make_sklearn(workload: Workload, dtype: Any) -> Side:
    """scikit-learn MLPClassifier/MLPRegressor, one partial_fit on the batch per step."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    x, y = workload.data(dtype)
    activation = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}[workload.activation]
    options = dict(
        hidden_layer_sizes=workload.sizes[1:-1],
        activation=activation,
        solver="sgd",
        learning_rate_init=workload.lr,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        batch_size=workload.batch,
        shuffle=False,
        random_state=0,
    )
    if workload.loss == "mse":
        model: Any = MLPRegressor(**options)
        target = y if y.shape[1] > 1 else y.ravel()
        fit = lambda: model.partial_fit(x, target)  # noqa: E731
    else:
        model = MLPClassifier(**options)
        target = y.ravel().astype(int)
        classes = np.arange(max(2, workload.sizes[-1]))
        fit = lambda: model.partial_fit(x, target, classes=classes)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit()  # initialises coefs_; overwritten with the shared weights below
    for k, (weight, bias) in enumerate(workload.weights(dtype)):
        model.coefs_[k] = weight.T.astype(model.coefs_[k].dtype).copy()
        model.intercepts_[k] = bias.astype(model.intercepts_[k].dtype).copy()

    def step() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit()
        # scikit-learn's squared error is half the mean square
        return float(model.loss_) * (2.0 if workload.loss == "mse" else 1.0)

    return Side(step)


# --- scalar engines: micrograd and chainrule's Value ---------------------------------------


def _scalar_network(
    workload: Workload, value_type: Any, unary: dict[str, Callable[[Any], Any]]
) -> Side:
    """The workload with one scalar node per number, row by row, as micrograd does it."""
    layers = [
        (
            [[value_type(float(v)) for v in row] for row in weight],
            [value_type(float(v)) for v in bias],
        )
        for weight, bias in workload.weights(np.float64)
    ]
    params = [v for weight, bias in layers for row in weight for v in row] + [
        v for _, bias in layers for v in bias
    ]
    x, y = workload.data(np.float64)
    rows = [([float(v) for v in xr], [float(v) for v in yr]) for xr, yr in zip(x, y)]
    act, last, n, lr = unary[workload.activation], len(layers) - 1, workload.batch, workload.lr

    def step() -> float:
        total: Any = 0.0
        for inputs, targets in rows:
            h: list[Any] = inputs
            for k, (weight, bias) in enumerate(layers):
                h = [sum((w * v for w, v in zip(row, h)), b) for row, b in zip(weight, bias)]
                if k < last:
                    h = [act(v) for v in h]
            if workload.loss == "log_loss":
                p = unary["sigmoid"](h[0])
                total = total + -(
                    targets[0] * unary["log"](p) + (1 - targets[0]) * unary["log"](1 - p)
                )
            else:
                for out, target in zip(h, targets):
                    total = total + (out - target) ** 2
        loss = total * (1.0 / (n * (1 if workload.loss == "log_loss" else len(rows[0][1]))))
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        return float(loss.data)

    return Side(step)


def make_micrograd(workload: Workload, dtype: Any) -> Side:
    """micrograd (pip package) with tanh, sigmoid and log added in micrograd's own style."""
    import math

    from micrograd.engine import Value

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # its topological sort recurses

    def unary(
        forward: Callable[[float], float], local: Callable[[float, float], float], name: str
    ) -> Callable[[Any], Any]:
        def apply(v: Any) -> Any:
            out = Value(forward(v.data), (v,), name)

            def _backward() -> None:
                v.grad += local(v.data, out.data) * out.grad

            out._backward = _backward
            return out

        return apply

    ops = {
        "tanh": unary(math.tanh, lambda a, o: 1 - o * o, "tanh"),
        "sigmoid": unary(lambda a: 1 / (1 + math.exp(-a)), lambda a, o: o * (1 - o), "sigmoid"),
        "log": unary(math.log, lambda a, o: 1 / a, "log"),
        "relu": lambda v: v.relu(),
    }
    return _scalar_network(workload, Value, ops)


def make_chainrule_value(workload: Workload, dtype: Any) -> Side:
    """chainrule's scalar engine: the same network built from chainrule.Value nodes."""
    import chainrule as cr

    ops = {
        name: (lambda v, name=name: getattr(v, name)())
        for name in ("tanh", "sigmoid", "log", "relu")
    }
    return _scalar_network(workload, cr.Value, ops)


# --- workers: one process per side, so thread pools and allocators never mix -----------


def _rss_bytes(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
        return True
    except OSError:
        return False


def worker(side_name: str, workload_name: str, dtype_name: str, memory: bool) -> None:
    """Set up one side, then answer the coordinator's commands on stdin/stdout (JSON)."""
    import json

    def answer(**fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    _pin_to_one_cpu()  # before a side imports its library and sizes its thread pools
    workload = workloads_named(workload_name)[0]
    dtype = np.dtype(dtype_name).type
    try:
        side = SIDES[side_name][0](workload, dtype)
        baseline_rss = _rss_bytes("VmRSS")
        if memory and side.traced_memory:
            tracemalloc.start()
        first = side.step()
        first_loss = float("nan") if first is None else float(first)
    except Exception as error:  # reported by the coordinator as a note, never fatal
        answer(error=f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}")
        return
    if memory:
        side.step()
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
        can_reset = _reset_peak_rss()
        side.step()
        traced = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else None
        peak = _rss_bytes("VmHWM") - baseline_rss if can_reset else None
        answer(first_loss=first_loss, traced=traced, rss=peak)
        return
    # Warm up for about a second (at least 3 steps): JIT compilation, allocator pools
    # and lazy initialisation (PyTorch's first few hundred steps are several times slower).
    started = time.perf_counter()
    for count in range(100_000):
        if count >= 3 and time.perf_counter() - started > 1.0:
            break
        side.step()
    answer(first_loss=first_loss, note=side.describe(), steps_per_call=side.steps_per_call)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            return
        if command[0] == "setup":
            answer(setup=side.setup() if side.setup is not None else {})
            continue
        answer(seconds=time_once(side.step, int(command[1])) / side.steps_per_call)


#: Threads per side (None: each library's default), set by --threads.
THREADS: list[int | None] = [None]


def worker_environment() -> dict[str, str]:
    """The workers' environment: no OpenBLAS overrides, and the thread count if fixed.

    With one thread, every worker is also pinned to one and the same CPU (see
    :func:`_pin_to_one_cpu`): XLA's CPU client sizes its thread pool by the CPUs the
    process may run on and ignores the thread flags, so without the pin JAX computed
    on two cores while the others had one (wall time 1.6 ms against 2.9 ms of CPU time
    per 784→256→256→10 step on a 2-core machine)."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    threads = THREADS[0]
    if threads is not None:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
        if threads == 1:
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            ).strip()
            if hasattr(os, "sched_getaffinity"):
                env[PINNED_CPU_VARIABLE] = str(min(os.sched_getaffinity(0)))
    return env


#: The CPU a worker pins itself to (set by the coordinator when --threads is 1).
PINNED_CPU_VARIABLE = "CHAINRULE_BENCH_CPU"


def _pin_to_one_cpu() -> None:
    """Run this worker on the one CPU the coordinator named, if it named one: the only
    limit every library's thread pools obey (the samples run one process at a time)."""
    cpu = os.environ.get(PINNED_CPU_VARIABLE)
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(cpu)})


class Worker:
    """The coordinator's handle on one worker process."""

    def __init__(
        self, side: str, workload: Workload, dtype_name: str, memory: bool = False
    ) -> None:
        import subprocess

        self.side = side
        self.steps_per_call = 1  # training steps per timed call (from the worker's hello)
        arguments = [sys.executable, __file__, "--worker", side, workload.name, dtype_name]
        if memory:
            arguments.append("--memory")
        self.process = subprocess.Popen(
            arguments,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=worker_environment(),
        )

    def read(self) -> dict[str, Any]:
        import json

        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            return {"error": "the worker process ended without answering"}
        result: dict[str, Any] = json.loads(line)
        return result

    def setup(self) -> dict[str, float]:
        """The side's one-time costs in seconds (empty for sides without any)."""
        assert self.process.stdin is not None
        self.process.stdin.write("setup\n")
        result: dict[str, float] = self.read().get("setup", {})
        return result

    def time(self, steps: int) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(f"time {steps}\n")
        return float(self.read()["seconds"])

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        self.process.wait(timeout=60)


# --- the coordinator ----------------------------------------------------------------------------

SIDES: dict[str, tuple[Callable[[Workload, Any], Side], str | None]] = {
    "numpy": (make_numpy, None),
    "BLAS limit": (make_blas_limit, None),
    "chainrule eager": (make_chainrule_eager, "chainrule"),
    "chainrule compiled": (make_chainrule_compiled, "chainrule"),
    "chainrule compile(step)": (make_chainrule_compiled_step, "chainrule"),
    "chainrule fit": (make_chainrule_fit, "chainrule"),
    "PyTorch eager": (make_torch, "torch"),
    "torch.compile": (make_torch_compile, "torch"),
    "JAX jit": (make_jax, "jax"),
    "HIPS autograd": (make_autograd, "autograd"),
    "scikit-learn": (make_sklearn, "sklearn"),
    "micrograd": (make_micrograd, "micrograd"),
    "chainrule Value": (make_chainrule_value, "chainrule"),
}
SCALAR_SIDES = ("micrograd", "chainrule Value")
SETUP_SIDES = ("chainrule fit",)  # sides whose one-time set-up is timed apart
# Pause between samples of different processes: idle BLAS/OpenMP threads spin for a
# while after their last call and would steal the next process's cores.
PAUSE = 0.3


def _applies(name: str, workload: Workload, dtype: Any) -> bool:
    # Scalar engines compute in Python floats: run once, on the small rows, float64 table.
    return name not in SCALAR_SIDES or (workload.small and dtype == np.float64)


def bench_workload(
    workload: Workload, dtype_name: str, names: list[str], repeats: int
) -> tuple[dict[str, float], list[str], dict[str, dict[str, float]]]:
    """Median seconds per step of every side on one workload and dtype, notes, and the
    one-time costs of the sides that have them (fit's first and later fits)."""
    dtype = np.dtype(dtype_name).type
    workers = [Worker(n, workload, dtype_name) for n in names if _applies(n, workload, dtype)]
    notes: list[str] = []
    reference = workload.reference_loss(dtype)
    tolerance = 2e-4 if dtype == np.float32 else 1e-9
    ready = []
    for handle in workers:
        hello = handle.read()
        if "error" in hello:
            notes.append(f"{handle.side} could not run: {hello['error']}")
            handle.close()
            continue
        ready.append(handle)
        handle.steps_per_call = int(hello.get("steps_per_call", 1))
        if hello.get("note"):
            notes.append(f"{handle.side}: {hello['note']}")
        if handle.side == "BLAS limit":
            continue
        scalar_tolerance = 1e-9 if handle.side in SCALAR_SIDES else tolerance
        error = abs(hello["first_loss"] - reference) / max(abs(reference), 1e-12)
        if not error <= scalar_tolerance:
            notes.append(f"{handle.side}: first loss {hello['first_loss']!r} ≠ {reference!r}")
    inner = {}
    for handle in ready:
        once = handle.time(1) * handle.steps_per_call  # seconds per call
        inner[handle.side] = (
            1 if handle.side in SCALAR_SIDES else max(1, min(5000, int(0.05 / once)))
        )
    samples: dict[str, list[float]] = {h.side: [] for h in ready}
    for _ in range(repeats):
        random.shuffle(ready)
        for handle in ready:
            if handle.side in SCALAR_SIDES and len(samples[handle.side]) >= 3:
                continue
            time.sleep(PAUSE)
            samples[handle.side].append(handle.time(inner[handle.side]))
    setups: dict[str, dict[str, float]] = {}
    for handle in ready:
        if handle.side in SETUP_SIDES:  # timed alone, after every side's samples
            time.sleep(PAUSE)
            setups[handle.side] = handle.setup()
        handle.close()
    return {side: median(values) for side, values in samples.items()}, notes, setups


def run(args: argparse.Namespace) -> None:
    print("# chainrule peer benchmark: one training step (forward + loss + backward + SGD)")
    print()
    for line in machine_description():
        print(f"- {line}")
    print(f"- command: python benchmarks/bench_peers.py {' '.join(sys.argv[1:])}".rstrip())
    print("- each side runs in its own process; samples interleave across processes")
    if args.threads is not None:
        pinned = "; every side pinned to one CPU" if args.threads == 1 else ""
        print(f"- threads per side: {args.threads} (BLAS, OpenMP, XLA){pinned}")
    wanted = [s.strip() for s in args.sides.split(",")] if args.sides else list(SIDES)
    names = []
    for name in wanted:
        if name not in SIDES:
            raise SystemExit(f"unknown side {name!r}; known: {', '.join(SIDES)}")
        module = SIDES[name][1]
        if module and importlib.util.find_spec(module) is None:
            print(f'- skipped {name}: `{module}` is not installed (pip install "chainrule[bench]")')
            continue
        if name == "torch.compile" and args.no_torch_compile:
            continue
        names.append(name)
    print()
    for dtype_name in args.dtypes.split(","):
        rows = []
        for workload in workloads_named(args.workloads):
            repeats = args.repeats if workload.name != "large" else max(3, args.repeats // 3)
            medians, notes, setups = bench_workload(workload, dtype_name, names, repeats)
            rows.append((workload, medians, setups))
            print(
                f"- {workload.title}, {dtype_name}: "
                f"first loss {workload.reference_loss(np.float64):.6g}; "
                f"{repeats} interleaved samples per side",
                flush=True,
            )
            for note in notes:
                print(f"  - {note}", flush=True)
        print()
        print(f"## {dtype_name}: median ms per step (ratio to hand numpy)")
        print()
        print("| workload | " + " | ".join(names) + " |")
        print("|" + "---|" * (len(names) + 1))
        for workload, medians, _ in rows:
            base = medians.get("numpy")
            cells = []
            for name in names:
                seconds = medians.get(name)
                ratio = f" ({seconds / base:.2f}×)" if seconds and base and name != "numpy" else ""
                cells.append(format_ms(seconds) + ratio)
            print(f"| {workload.title} | " + " | ".join(cells) + " |")
        print()
        if "chainrule fit" in names:
            fit_notes(dtype_name, rows)
        if "BLAS limit" in names:
            print(f"## {dtype_name}: the BLAS floor (the step's matrix products alone) and")
            print("each side's ratio to it")
            print()
            others = [name for name in names if name != "BLAS limit"]
            print("| workload | BLAS floor (ms) | " + " | ".join(others) + " |")
            print("|" + "---|" * (len(others) + 2))
            for workload, medians, _ in rows:
                floor = medians.get("BLAS limit")
                cells = [
                    f"{medians[name] / floor:.2f}×" if floor and medians.get(name) else "–"
                    for name in others
                ]
                print(f"| {workload.title} | {format_ms(floor)} | " + " | ".join(cells) + " |")
            print()
    if args.memory:
        memory_table(args, names)
    if not args.no_import_times:
        print("## import time (median of 7 fresh processes, seconds)")
        print()
        for module in ("numpy", "chainrule", "torch", "jax", "autograd", "sklearn", "micrograd"):
            if importlib.util.find_spec(module) is not None:
                seconds = import_time(module)
                print(f"- import {module}: {'failed' if seconds is None else f'{seconds:.3f}'}")
        print()


def fit_notes(
    dtype_name: str, rows: list[tuple[Workload, dict[str, float], dict[str, dict[str, float]]]]
) -> None:
    """What the fit column holds, and fit's set-up timed apart from its steps."""
    print("chainrule fit: each timed call is a whole `fit` on the same model of "
          + ", ".join(f"{fit_epochs(w)} epochs ({w.title})" for w, _, _ in rows)
          + ", one batch per epoch; the figure is per step (epoch), so it carries that "
          "share of a later fit's set-up (checks, loop, the step the model kept).")  # fmt: skip
    print()
    print(f"## {dtype_name}: fit's set-up, timed apart (median of {SETUP_MODELS} fresh models)")
    print()
    print("A one-epoch fit: the first on a fresh model (recording and planning the step),")
    print("the next on the same model (the step kept; its first replay is also checked once")
    print("against an eager call) and the one after that; in ms and in hand numpy steps.")
    print("Each includes its one training step: the set-up is the excess over one step.")
    print()
    print("| workload | hand numpy step (ms) | first fit, 1 epoch (ms) | second fit (ms) "
          "| third fit (ms) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for workload, medians, setups in rows:
        base = medians.get("numpy")
        costs = setups.get("chainrule fit", {})
        cells = []
        for key in ("first fit", "later fit", "third fit"):
            seconds = costs.get(key)
            ratio = f" ({seconds / base:.1f} steps)" if seconds and base else ""
            cells.append(format_ms(seconds) + ratio)
        print(f"| {workload.title} | {format_ms(base)} | " + " | ".join(cells) + " |")
    print()


def memory_table(args: argparse.Namespace, names: list[str]) -> None:
    """Peak memory per step, each side alone in a fresh process."""
    print("## peak memory of one step (MiB; ratio to hand numpy)")
    print()
    print("tracemalloc: peak of what the side allocated after its weights and data existed")
    print("(buffers, gradients, optimizer state, temporaries) during one steady-state step;")
    print("RSS: the process's resident-set high-water mark during that step above its size")
    print("before the first step (PyTorch and JAX allocate outside tracemalloc's sight).")
    print()
    # torch.compile is left out: its compilation would dominate what RSS shows.
    measured = [n for n in names if n not in ("BLAS limit", "torch.compile")]
    print("| workload | dtype | measure | " + " | ".join(measured) + " |")
    print("|" + "---|" * (len(measured) + 3))
    for dtype_name in args.dtypes.split(","):
        dtype = np.dtype(dtype_name).type
        for workload in workloads_named(args.workloads):
            results: dict[str, dict[str, Any]] = {}
            for name in measured:
                if _applies(name, workload, dtype):
                    handle = Worker(name, workload, dtype_name, memory=True)
                    results[name] = handle.read()
                    handle.process.wait(timeout=600)
            for measure in ("traced", "rss"):
                base = results.get("numpy", {}).get(measure)
                cells = []
                for name in measured:
                    value = results.get(name, {}).get(measure)
                    if value is None:
                        cells.append("—")
                        continue
                    ratio = f" ({value / base:.2f}×)" if base and name != "numpy" else ""
                    cells.append(f"{value / 2**20:.3g}{ratio}")
                label = "tracemalloc" if measure == "traced" else "RSS"
                print(
                    f"| {workload.title} | {dtype_name} | {label} | " + " | ".join(cells) + " |",
                    flush=True,
                )
    print()


def main() -> None:
    reexec_without_blas_overrides()
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], memory="--memory" in sys.argv[5:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", help="comma-separated names (default: all)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--sides", help="comma-separated side names (default: all)")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved samples per side")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory per step")
    parser.add_argument("--no-torch-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-import-times", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads per side for BLAS, OpenMP (PyTorch) and XLA (default: theirs); "
        "1 also pins every side to one CPU (XLA obeys only that) and makes runs on a "
        "shared, loaded machine far steadier",
    )
    args = parser.parse_args()
    THREADS[0] = args.threads
    run(args)


if __name__ == "__main__":
    main()

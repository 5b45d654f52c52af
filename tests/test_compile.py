"""chainrule.compile: recorded steps replay bit for bit like eager mode, and every in-place
kernel reproduces the op row it stands for."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops
from chainrule._broadcast import unbroadcast
from chainrule._math import ARRAY
from chainrule.compile import CompileError
from chainrule.compile.analysis import StepAnalysis
from chainrule.compile.backward_planning import BackwardPlanner
from chainrule.compile.buffers import _Adjoint
from chainrule.compile.checking import _run, _same_bits
from chainrule.compile.forward_planning import ForwardPlanner

DTYPES = (np.float32, np.float64)


# --- helpers ---------------------------------------------------------------------------


class PlainSGD:
    """The optimizer contract in its simplest form: w ← w − η·∇L, in place."""

    def __init__(self, params: list[cr.Tensor], lr: float) -> None:
        self.params = params
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.data -= self.lr * p.grad


def make_params(sizes: list[int], dtype: Any, seed: int = 0) -> list[cr.Tensor]:
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1 / np.sqrt(fan_in)
        params.append(
            cr.tensor(
                rng.uniform(-bound, bound, (fan_out, fan_in)).astype(dtype), requires_grad=True
            )
        )
        params.append(
            cr.tensor(rng.uniform(-bound, bound, (fan_out,)).astype(dtype), requires_grad=True)
        )
    return params


def forward(params: list[cr.Tensor], x: Any, activation: str) -> cr.Tensor:
    h = cr.tensor(x)
    layers = len(params) // 2
    for k in range(layers):
        h = h @ params[2 * k].T + params[2 * k + 1]
        if k < layers - 1:
            h = getattr(h, activation)()
    return h


def mse(params: list[cr.Tensor], x: Any, y: Any) -> cr.Tensor:
    d = forward(params, x, "tanh") - y
    return (d * d).mean()


def log_loss(params: list[cr.Tensor], x: Any, y: Any) -> cr.Tensor:
    p = forward(params, x, "sigmoid").sigmoid()
    return -(y * p.log() + (1 - y) * (1 - p).log()).mean()


def cross_entropy(params: list[cr.Tensor], x: Any, labels: Any) -> cr.Tensor:
    logp = forward(params, x, "relu").log_softmax(axis=-1)
    return -logp[np.arange(len(labels)), labels].mean()


def eager_step(
    loss: Callable[..., cr.Tensor], params: list[cr.Tensor], opt: PlainSGD
) -> Callable[..., cr.Tensor]:
    def step(x: Any, y: Any) -> cr.Tensor:
        opt.zero_grad()
        value = loss(params, x, y)
        value.backward()
        opt.step()
        return value

    return step


def batches(dtype: Any, n: int, features: int, target: str, seed: int = 1) -> list[tuple[Any, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(4):
        x = rng.normal(size=(n, features)).astype(dtype)
        if target == "labels":
            y = rng.integers(0, 3, size=n)
        elif target == "binary":
            y = (rng.random((n, 1)) < 0.5).astype(dtype)
        else:
            y = rng.normal(size=(n, 1)).astype(dtype)
        out.append((x, y))
    return out


def same_bits(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


WORKLOADS = {
    "mse": (mse, [4, 8, 8, 1], "real"),
    "log_loss": (log_loss, [3, 2, 1], "binary"),
    "cross_entropy": (cross_entropy, [4, 8, 3], "labels"),
}


# --- kernels against their op rows ------------------------------------------------------

#: Every op row with an in-place forward, and every (row, input) with an in-place vjp.
FORWARD_INTO = [op for op in ops.OPS.values() if op.forward_into is not None]
VJP_INTO = [
    (op, index)
    for op in ops.OPS.values()
    for index, partial in enumerate(op.partials)
    if partial.into is not None
]

KERNEL_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 5)), ((), (3,))]


def _inputs_for(
    op: ops.Op, shapes: tuple[Any, ...], dtype: Any, rng: np.random.Generator
) -> list[np.ndarray]:
    arrays = [rng.uniform(0.3, 1.7, size=shape).astype(dtype) for shape in shapes]
    if op is ops.MATMUL:
        arrays = [rng.normal(size=(5, 3)).astype(dtype), rng.normal(size=(4, 3)).astype(dtype).T]
    return arrays


def _params_for(op: ops.Op) -> dict[str, Any]:
    return (
        {
            "pow": {"p": 2.5},
            "sum": {"axis": 0, "keepdims": False},
            "max": {"axis": 1, "keepdims": True},
            "log_softmax": {"axis": -1},
        }.get(op.name, {})
        if op is not ops.POW
        else {}
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", FORWARD_INTO, ids=lambda op: f"{op.name}{op.arity}")
def test_forward_kernel_matches_op_row(op: ops.Op, dtype: Any) -> None:
    """Every in-place forward kernel writes exactly the bits its op row returns."""
    rng = np.random.default_rng(0)
    cases = [((3, 4),), ((2, 3, 4),)] if op.arity == 1 else KERNEL_SHAPES
    for shapes in cases:
        if op.arity == 1:
            shapes = shapes[:1]
        arrays = _inputs_for(op, shapes, dtype, rng)
        if op in (ops.SUM, ops.MAX) and arrays[0].ndim < 2:
            continue
        params = _params_for(op)
        reference = np.asarray(op.forward(ARRAY, *arrays, **params))
        out = np.empty(reference.shape, reference.dtype)
        assert op.forward_into is not None
        instructions = op.forward_into(arrays, params, out)
        assert instructions, f"{op.name} kernel declined shapes {shapes}"
        _run(instructions)
        assert same_bits(out, reference), (op.name, shapes)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", VJP_INTO, ids=lambda k: f"{k[0].name}{k[0].arity}-{k[1]}")
def test_vjp_kernel_matches_op_row(key: tuple[ops.Op, int], dtype: Any) -> None:
    """Every in-place vjp kernel writes exactly the contribution eager backward computes."""
    op, index = key
    rng = np.random.default_rng(1)
    shapes = [(3, 4)] * op.arity
    arrays = _inputs_for(op, tuple(shapes), dtype, rng)
    params = _params_for(op)
    out = np.asarray(op.forward(ARRAY, *arrays, **params))
    adjoint = rng.normal(size=out.shape).astype(dtype)
    partial = op.partials[index]
    if partial.vjp is not None:
        reference = np.asarray(partial.vjp(adjoint, out, *arrays, **params))
    else:
        reference = np.asarray(adjoint * partial.local(ARRAY, out, *arrays, **params))
    destination = np.empty_like(reference)
    assert partial.into is not None
    instructions = partial.into(adjoint, out, arrays, params, destination)
    assert instructions
    _run(instructions)
    assert same_bits(destination, reference), op.name


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", [ops.RELU, ops.SOFTPLUS], ids=lambda op: op.name)
@pytest.mark.parametrize("shape", [(1003,), (300, 257), (33_000, 3)], ids=str)
def test_max_with_zero_kernels_match_the_row_on_special_values(
    shape: tuple[int, ...], op: ops.Op, dtype: Any, in_place: bool
) -> None:
    """relu's and softplus's kernels take max(a, 0) against zeros of the whole shape, a
    broadcast row of zeros, or 0 (by size and width, for speed): the bits stay the row's
    on −0, NaN, ±inf, subnormals and both signs, in SIMD bodies and tails, written over
    the input too."""
    tiny = np.finfo(dtype).smallest_subnormal
    special = np.array([-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, tiny, -tiny, 2.5, -3.0])
    rng = np.random.default_rng(7)
    size = int(np.prod(shape))
    a = np.concatenate([np.resize(special, size // 2), rng.normal(size=size - size // 2)])
    a = rng.permutation(a).astype(dtype).reshape(shape)
    with np.errstate(all="ignore"):
        reference = np.asarray(op.forward(ARRAY, a))
        out = a.copy() if in_place else np.empty_like(reference)
        assert op.forward_into is not None
        instructions = op.forward_into([out if in_place else a], {}, out)
        _run(instructions)
    assert same_bits(out, reference), op.name


def test_max_with_zero_operand_by_size_and_width() -> None:
    """The three shapes above take the three operands: shared read-only zeros of the whole
    shape, one broadcast row of zeros, and the number 0."""
    whole = ops._zero_operand(np.empty((1003,), np.float32))
    row = ops._zero_operand(np.empty((300, 257), np.float32))
    number = ops._zero_operand(np.empty((33_000, 3), np.float32))
    assert whole.shape == (1003,) and not whole.flags.writeable and not whole.any()
    assert row.shape == (257,) and not row.flags.writeable and not row.any()
    assert number == 0.0 and not isinstance(number, np.ndarray)
    # Smaller requests share the first one's memory.
    assert np.shares_memory(ops._zero_operand(np.empty((10, 10), np.float32)), whole)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_log_softmax_kernels_match_the_row_on_non_finite_rows(axis: int) -> None:
    """log_softmax's in-place forward and vjp equal its row bit for bit, also where a
    slice is all -inf (its peak zeroed), holds +inf or NaN, and along every axis."""
    a = np.random.default_rng(5).normal(size=(4, 5)).astype(np.float32)
    a[0] = -np.inf
    a[1, 2] = np.inf
    a[2, 3] = np.nan
    a[:, 4] = -np.inf
    params = {"axis": axis}
    adjoint = np.random.default_rng(6).normal(size=a.shape).astype(np.float32)
    partial = ops.LOG_SOFTMAX.partials[0]
    assert ops.LOG_SOFTMAX.forward_into is not None
    assert partial.vjp is not None and partial.into is not None
    with np.errstate(all="ignore"):  # log 0, inf − inf: the point of the test
        reference = ops.LOG_SOFTMAX.forward(ARRAY, a, **params)
        out = np.empty_like(reference)
        _run(ops.LOG_SOFTMAX.forward_into([a], params, out))
        expected = partial.vjp(adjoint, reference, a, **params)
        destination = np.empty_like(expected)
        _run(partial.into(adjoint, reference, [a], params, destination))
    assert same_bits(out, reference)
    assert same_bits(destination, expected)


@pytest.mark.parametrize("shape", [(3, 4), (300, 40)])
def test_planner_bit_check_sees_every_bit(shape: tuple[int, int]) -> None:
    """The planner's check tells apart 0 and -0 and one ulp, and takes NaNs alike, for
    small results (compared as bytes) and large ones (compared in place) alike."""
    a = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    assert _same_bits(a, a.copy()) and _same_bits(a.T, a.copy().T)
    assert not _same_bits(a, a.astype(np.float64)) and not _same_bits(a, a[:-1])
    nudged = a.copy()
    nudged[1, 2] = np.nextafter(nudged[1, 2], np.float32(np.inf))
    assert not _same_bits(a, nudged)
    zeros = np.zeros(shape)
    assert not _same_bits(zeros, -zeros)
    assert _same_bits(np.full(shape, np.nan), np.full(shape, np.nan))


@pytest.mark.parametrize(
    ("shape", "target"), [((5, 3), (3,)), ((5, 3), (1, 3)), ((2, 5, 3), (5, 1)), ((4, 1), ())]
)
def test_planned_unbroadcast_matches_helper(
    shape: tuple[int, ...], target: tuple[int, ...]
) -> None:
    """The planned reduction that undoes broadcasting equals chainrule's unbroadcast."""
    adjoint = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    run: list[Any] = []
    planner = BackwardPlanner(ForwardPlanner([], False, False, StepAnalysis([], {}, set())))
    fitted = planner._fit(_Adjoint(adjoint, owned=True), target, run)
    assert same_bits(fitted.array, unbroadcast(adjoint, target))


@pytest.mark.parametrize("shape", [(7, 5), (64, 16), (3, 1)])
def test_matmul_vjp_layout_keeps_the_numbers(shape: tuple[int, int]) -> None:
    """The weight gradient computed as (adjointᵀ a)ᵀ for a transposed b equals aᵀ adjoint.

    The two are the same dot products, but BLAS may add them in another order for the
    other layout, so they agree to float32 rounding rather than bit for bit.
    """
    rng = np.random.default_rng(3)
    a = rng.normal(size=(9, shape[0])).astype(np.float32)
    weight = rng.normal(size=(shape[1], shape[0])).astype(np.float32)
    adjoint = rng.normal(size=(9, shape[1])).astype(np.float32)
    got = ops.MATMUL.partials[1].vjp(adjoint, None, a, weight.T)
    exact = a.astype(np.float64).T @ adjoint.astype(np.float64)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)
    assert got.T.flags.c_contiguous or shape[1] == 1


# --- whole steps against eager mode -----------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_compiled_step_is_bit_identical_to_eager(name: str, dtype: Any) -> None:
    """A wrapped eager step gives the same losses and weights as eager mode, to the bit."""
    loss, sizes, target = WORKLOADS[name]
    eager_params = make_params(sizes, dtype)
    params = make_params(sizes, dtype)
    eager = eager_step(loss, eager_params, PlainSGD(eager_params, 0.1))
    compiled = cr.compile(eager_step(loss, params, PlainSGD(params, 0.1)))
    data = batches(dtype, 6, sizes[0], target)
    for step in range(8):
        x, y = data[step % len(data)]
        assert same_bits(compiled(x, y).data, eager(x, y).data), step
        for p, q in zip(params, eager_params):
            assert same_bits(p.data, q.data) and same_bits(p.grad, q.grad)
    assert compiled.stats.traces == 1 and compiled.stats.replays == 7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_compiled_loss_with_optimizer_is_bit_identical(name: str, dtype: Any) -> None:
    """compile(loss_fn, optimizer=...) matches zero_grad/forward/backward/step in eager mode."""
    loss, sizes, target = WORKLOADS[name]
    eager_params = make_params(sizes, dtype)
    params = make_params(sizes, dtype)
    eager = eager_step(loss, eager_params, PlainSGD(eager_params, 0.1))
    compiled = cr.compile(lambda x, y: loss(params, x, y), optimizer=PlainSGD(params, 0.1))
    data = batches(dtype, 6, sizes[0], target)
    for step in range(8):
        x, y = data[step % len(data)]
        assert same_bits(compiled(x, y).data, eager(x, y).data), step
    for p, q in zip(params, eager_params):
        assert same_bits(p.data, q.data) and same_bits(p.grad, q.grad)
    assert compiled.stats.replays == 7


# tanh with wrong kernels: sin for its forward, adjoint · out for its partial.
_WRONG_KERNEL_TANH = ops.Op(
    "tanh",
    ops.TANH.forward,
    (
        ops.Partial(
            ops.TANH.partials[0].symbol,
            ops.TANH.partials[0].local,
            into=ops.Into(
                ("out",),
                lambda adj, out, ins, params, dst, scratch: [lambda: np.multiply(adj, out, dst)],
            ),
        ),
    ),
    "tanh(a)",
    forward_into=lambda ins, params, out: [lambda: np.sin(ins[0], out=out)],
)


@pytest.mark.parametrize("with_optimizer", [True, False])
def test_planner_replaces_disagreeing_kernels_with_their_rows(with_optimizer: bool) -> None:
    """A kernel that disagrees with its row (even one computing over its input's buffer) is
    replaced by the row, and training stays bit-identical to eager mode."""

    def loss(ps: list[cr.Tensor], x: Any, y: Any) -> cr.Tensor:
        hidden = cr.Tensor._apply(_WRONG_KERNEL_TANH, (x @ ps[0].T + ps[1],))
        d = hidden @ ps[2].T + ps[3] - y
        return (d * d).mean()

    eager_params = make_params([4, 8, 1], np.float64)
    params = make_params([4, 8, 1], np.float64)
    eager = eager_step(loss, eager_params, PlainSGD(eager_params, 0.1))
    if with_optimizer:
        compiled = cr.compile(lambda x, y: loss(params, x, y), optimizer=PlainSGD(params, 0.1))
    else:
        compiled = cr.compile(eager_step(loss, params, PlainSGD(params, 0.1)))
    data = batches(np.float64, 6, 4, "real")
    for step in range(6):
        x, y = data[step % len(data)]
        assert same_bits(compiled(x, y).data, eager(cr.tensor(x), y).data), step
    for p, q in zip(params, eager_params):
        assert same_bits(p.data, q.data) and same_bits(p.grad, q.grad)
    assert compiled.stats.replays == 5
    assert compiled.stats.flat_replays == (5 if with_optimizer else 0)


def test_compiled_loss_replays_flat_when_inputs_are_arguments() -> None:
    """When every input is an argument, a parameter or a scalar, fn is not called again."""
    params = make_params([4, 8, 1], np.float64)
    calls = []

    def loss(x: Any, y: Any) -> cr.Tensor:
        calls.append(1)
        return mse(params, x, y)

    compiled = cr.compile(loss, optimizer=PlainSGD(params, 0.1))
    for x, y in batches(np.float64, 5, 4, "real") * 2:
        compiled(x, y)
    # one recording, one eager check of the first replay, then no calls
    assert len(calls) == 2 and compiled.stats.flat_replays == 7


def test_compiled_loss_with_frozen_data_falls_back_and_stays_correct() -> None:
    """An array fn builds from the data (a one-hot) is caught by the first-replay check."""
    dtype = np.float64
    eager_params = make_params([4, 8, 3], dtype)
    params = make_params([4, 8, 3], dtype)

    def one_hot_loss(ps: list[cr.Tensor], x: Any, labels: Any) -> cr.Tensor:
        hot = np.eye(3)[labels]  # made inside fn: the recording would freeze it
        return -(forward(ps, x, "tanh").log_softmax(axis=-1) * hot).sum() * (1 / len(labels))

    eager = eager_step(one_hot_loss, eager_params, PlainSGD(eager_params, 0.1))
    compiled = cr.compile(lambda x, y: one_hot_loss(params, x, y), optimizer=PlainSGD(params, 0.1))
    for step, (x, y) in enumerate(batches(dtype, 6, 4, "labels") * 2):
        assert same_bits(compiled(x, y).data, eager(x, y).data), step
    assert compiled.stats.flat_replays == 0
    assert any("not its arguments" in note for note in compiled.stats.notes)


def test_compiled_loss_with_a_changing_scalar_is_caught_on_first_replay() -> None:
    """A scalar fn reads from outside (baked into the trace) is caught by the first replay."""
    params = make_params([4, 8, 1], np.float64)
    eager_params = make_params([4, 8, 1], np.float64)
    schedule = {"weight": 1.0}  # changed between calls, read by fn: not an argument

    def weighted(ps: list[cr.Tensor], x: Any, y: Any) -> cr.Tensor:
        return mse(ps, x, y) * schedule["weight"]

    compiled = cr.compile(lambda x, y: weighted(params, x, y), optimizer=PlainSGD(params, 0.1))
    eager = eager_step(weighted, eager_params, PlainSGD(eager_params, 0.1))
    for step, (x, y) in enumerate(batches(np.float64, 5, 4, "real")):
        schedule["weight"] = 1.0 + step
        assert same_bits(compiled(x, y).data, eager(x, y).data), step
    assert compiled.stats.flat_replays == 0
    assert any("differed" in note for note in compiled.stats.notes)


def test_compile_records_again_for_new_shapes() -> None:
    """A smaller last batch records a second program; the first one is kept for reuse."""
    params = make_params([4, 8, 1], np.float64)
    eager_params = make_params([4, 8, 1], np.float64)
    compiled = cr.compile(eager_step(mse, params, PlainSGD(params, 0.1)))
    eager = eager_step(mse, eager_params, PlainSGD(eager_params, 0.1))
    rng = np.random.default_rng(5)
    for n in (6, 6, 3, 6, 3, 6):
        x, y = rng.normal(size=(n, 4)), rng.normal(size=(n, 1))
        assert same_bits(compiled(x, y).data, eager(x, y).data)
    assert compiled.stats.traces == 2 and compiled.stats.replays == 4
    x32 = rng.normal(size=(6, 4)).astype(np.float32)
    compiled(x32, rng.normal(size=(6, 1)))
    assert compiled.stats.traces == 3  # a new dtype is a new signature


def test_compile_detects_data_dependent_control_flow() -> None:
    """A step whose ops depend on the data leaves its recording, stays correct, then goes eager."""
    params = make_params([4, 8, 1], np.float64)
    eager_params = make_params([4, 8, 1], np.float64)

    def branching(ps: list[cr.Tensor], x: Any, y: Any) -> cr.Tensor:
        activation = "tanh" if float(np.sum(x)) > 0 else "sigmoid"
        d = forward(ps, x, activation) - y
        return (d * d).mean()

    compiled = cr.compile(eager_step(branching, params, PlainSGD(params, 0.1)), max_divergences=2)
    eager = eager_step(branching, eager_params, PlainSGD(eager_params, 0.1))
    rng = np.random.default_rng(6)
    with pytest.warns(RuntimeWarning, match="different ops"):
        for step in range(12):
            sign = 1.0 if step % 2 else -1.0
            x = np.abs(rng.normal(size=(5, 4))) * sign
            y = rng.normal(size=(5, 1))
            assert same_bits(compiled(x, y).data, eager(x, y).data), step
    for p, q in zip(params, eager_params):
        assert same_bits(p.data, q.data)
    assert compiled.stats.divergences == 3 and compiled.stats.eager_calls > 0


def test_compiled_gradients_accumulate_like_eager_without_zero_grad() -> None:
    """Without zero_grad the replayed gradients add up across calls exactly as eager ones."""
    params = make_params([4, 8, 1], np.float64)
    eager_params = make_params([4, 8, 1], np.float64)

    def accumulate(ps: list[cr.Tensor]) -> Callable[..., cr.Tensor]:
        def step(x: Any, y: Any) -> cr.Tensor:
            value = mse(ps, x, y)
            value.backward()
            return value

        return step

    compiled = cr.compile(accumulate(params))
    eager = accumulate(eager_params)
    for x, y in batches(np.float64, 5, 4, "real"):
        compiled(x, y)
        eager(x, y)
    for p, q in zip(params, eager_params):
        assert same_bits(p.grad, q.grad)


def test_compiled_step_keeps_retained_interior_gradients() -> None:
    """retain_grad() and backward(retain_grads=True) fill interior grads as in eager mode."""

    def step_with(ps: list[cr.Tensor]) -> Callable[..., Any]:
        def step(x: Any, y: Any) -> Any:
            hidden = (cr.tensor(x) @ ps[0].T + ps[1]).retain_grad()
            out = hidden.tanh() @ ps[2].T + ps[3]
            loss = ((out - y) * (out - y)).mean()
            loss.backward(retain_grads=True)
            for p in ps:
                p.grad = None
            return hidden.grad.copy(), out.grad.copy()

        return step

    params, eager_params = make_params([4, 8, 1], np.float64), make_params([4, 8, 1], np.float64)
    compiled, eager = cr.compile(step_with(params)), step_with(eager_params)
    for x, y in batches(np.float64, 5, 4, "real"):
        for got, want in zip(compiled(x, y), eager(x, y)):
            assert same_bits(got, want)
    assert compiled.stats.replays == 3


def test_compiled_step_notices_replaced_parameter_data() -> None:
    """Replacing a parameter's array (not updating it in place) makes the step record again."""
    params = make_params([4, 8, 1], np.float64)
    compiled = cr.compile(eager_step(mse, params, PlainSGD(params, 0.1)))
    (x, y), *_ = batches(np.float64, 5, 4, "real")
    compiled(x, y)
    params[0].data = params[0].data.copy()
    compiled(x, y)
    assert compiled.stats.traces == 2
    assert any("replaced" in note for note in compiled.stats.notes)


def test_compiled_step_returns_copies() -> None:
    """A returned loss keeps its value after later calls overwrite the step's buffers."""
    params = make_params([4, 8, 1], np.float64)
    compiled = cr.compile(eager_step(mse, params, PlainSGD(params, 0.1)))
    losses = [compiled(x, y) for x, y in batches(np.float64, 5, 4, "real")]
    values = [float(loss) for loss in losses]
    assert len(set(values)) == len(values)
    assert all(not loss.requires_grad for loss in losses)


def test_compile_runs_eagerly_for_a_graph_carried_between_calls() -> None:
    """A step using a tensor computed before it started cannot be replayed: it runs eagerly."""
    params = make_params([4, 8, 1], np.float64)
    carried = cr.tensor(np.ones((5, 1)), requires_grad=True) * 2.0

    def step(x: Any, y: Any) -> cr.Tensor:
        value = ((forward(params, x, "tanh") - carried) ** 2).mean()
        value.backward()
        return value

    compiled = cr.compile(step)
    for x, y in batches(np.float64, 5, 4, "real"):
        compiled(x, y)
    assert compiled.stats.eager_calls == 3
    assert "earlier call" in compiled.stats.notes[0]


def test_compile_under_detect_anomaly_runs_eagerly() -> None:
    """detect_anomaly() still names the op that produced a NaN inside a compiled step."""
    params = make_params([4, 8, 1], np.float64)
    compiled = cr.compile(eager_step(log_loss, params, PlainSGD(params, 0.1)))
    x, y = batches(np.float64, 5, 4, "binary")[0]
    compiled(x, y)
    params[-1].data[...] = 1e4  # σ saturates to 1, so log(1 − p) is −inf
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match="forward of log"):
        compiled(x, y)


def test_compile_rejects_bad_arguments() -> None:
    """Bad uses of compile fail with errors that say what to pass instead."""
    with pytest.raises(TypeError, match="needs a function"):
        cr.compile(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step\\(\\) and zero_grad\\(\\)"):
        cr.compile(lambda: None, optimizer=object())
    with pytest.raises(ValueError, match="max_traces"):
        cr.compile(lambda: None, max_traces=0)
    params = make_params([4, 1], np.float64)
    not_a_loss = cr.compile(lambda x: 1.0, optimizer=PlainSGD(params, 0.1))
    with pytest.raises(CompileError, match="must return the loss"):
        not_a_loss(np.ones((2, 4)))
    compiled = cr.compile(lambda x: mse(params, x, 0.0), optimizer=PlainSGD(params, 0.1))
    with pytest.raises(TypeError, match="numpy arrays"):
        compiled([[1.0, 2.0, 3.0, 4.0]])


def test_compile_trains_a_chainrule_mlp_with_adam_like_eager() -> None:
    """With chainrule.nn and chainrule.optim, compiled and eager training agree to the bit."""

    def build() -> tuple[Any, Any]:
        model = cr.nn.MLP([4, 8, 3], activation="relu", dtype="float32", seed=3)
        return model, cr.optim.Adam(model.parameters(), lr=0.01)

    model, opt = build()
    eager_model, eager_opt = build()
    compiled = cr.compile(lambda x, y: cr.nn.cross_entropy(model(x), y), optimizer=opt)
    for step, (x, y) in enumerate(batches(np.float32, 6, 4, "labels") * 2):
        eager_opt.zero_grad()
        loss = cr.nn.cross_entropy(eager_model(x), y)
        loss.backward()
        eager_opt.step()
        assert same_bits(compiled(x, y).data, loss.data), step
    for (name, p), q in zip(model.named_parameters(), eager_model.parameters()):
        assert same_bits(p.data, q.data), name


def test_compiled_step_leaves_value_graphs_eager() -> None:
    """Scalar Value graphs inside a compiled step run eagerly and do not disturb the replay."""
    params = make_params([4, 8, 1], np.float64)
    step = eager_step(mse, params, PlainSGD(params, 0.1))
    grads = []

    def with_values(x: Any, y: Any) -> cr.Tensor:
        a = cr.Value(float(x[0, 0]))
        (a * a).backward()
        grads.append(a.grad)
        return step(x, y)

    compiled = cr.compile(with_values)
    for x, y in batches(np.float64, 5, 4, "real"):
        compiled(x, y)
    assert grads == [2 * x[0, 0] for x, _ in batches(np.float64, 5, 4, "real")]
    assert compiled.stats.divergences == 0 and compiled.stats.replays == 3


def test_recording_block_restores_the_mode_after_nesting_and_errors() -> None:
    """graph.recording installs its recorder, keeps the other switches, restores the mode after."""
    from chainrule.graph import grad_mode, recording

    outer, inner = object(), object()
    before = grad_mode()
    with cr.no_grad(), recording(outer):
        assert grad_mode().recorder is outer and not grad_mode().enabled
        with pytest.raises(KeyError), recording(inner):
            assert grad_mode().recorder is inner and not grad_mode().enabled
            raise KeyError("inside")
        assert grad_mode().recorder is outer
    assert grad_mode() is before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_kernel_gives_matmul_bits_on_every_layout(dtype: Any) -> None:
    """The compiled 2-D product (np.dot where it can write out directly) gives np.matmul's
    bits for C-ordered and transposed operands, inf and NaN included."""
    rng = np.random.default_rng(3)
    for (n, k, m), a_transposed, b_transposed in itertools.product(
        [(891, 2, 3), (16, 64, 1), (1, 3, 2), (128, 10, 256), (0, 3, 2)],
        [False, True],
        [False, True],
    ):
        a = rng.normal(size=(k, n) if a_transposed else (n, k)).astype(dtype)
        b = rng.normal(size=(m, k) if b_transposed else (k, m)).astype(dtype)
        a, b = (a.T if a_transposed else a), (b.T if b_transposed else b)
        if a.size:
            a.flat[0], b.flat[-1] = np.inf, np.nan
        out = np.empty((n, m), dtype)
        instruction = ops._product_into(a, b, out)
        assert instruction.func is np.dot
        with np.errstate(invalid="ignore"):  # inf - inf in the sums; matmul warns alike
            instruction()
            expected = np.matmul(a, b)
        assert _same_bits(out, expected), ((n, k, m), a_transposed, b_transposed)


def test_product_kernel_uses_matmul_where_dot_cannot_write_out() -> None:
    """A destination that is not C-ordered, or overlaps an operand, gets np.matmul."""
    a, b = np.ones((4, 3)), np.ones((3, 4))
    transposed_out = np.empty((4, 4)).T
    assert ops._product_into(a, b, transposed_out).func is np.matmul
    square = np.ones((4, 4))
    overlapping = ops._product_into(square, np.eye(4), square)
    assert overlapping.func is np.matmul
    overlapping()
    assert np.array_equal(square, np.ones((4, 4)))


@pytest.mark.parametrize("form", ["flat", "calls fn", "eager"])
def test_before_update_sees_the_loss_before_the_parameters_change(form: str) -> None:
    """CompiledStep.before_update (the training loop's hook) is called with the loss the
    call returns, after backward and before the optimizer changes any parameter: on the
    recording call, on replays (flat, or calling fn again) and on eager calls."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    w = cr.tensor(rng.normal(size=(3, 1)), requires_grad=True)
    optimizer = cr.optim.SGD([w], lr=0.1)
    offset = [0.0]  # read by fn beyond its arguments: its replays cannot be flat

    def loss(xb: np.ndarray, yb: np.ndarray) -> cr.Tensor:
        error = cr.tensor(xb) @ w - cr.tensor(yb)
        if form == "calls fn":
            offset[0] += 1.0
            error = error + offset[0]
        return (error * error).mean()

    step = cr.compile(loss, optimizer=optimizer)
    seen: list[tuple[float, bytes]] = []
    step.before_update = lambda value: seen.append((value, w.data.tobytes()))
    for _ in range(4):
        before = w.data.tobytes()
        if form == "eager":
            with cr.detect_anomaly():
                value = float(step(x, y).data)
        else:
            value = float(step(x, y).data)
        assert seen[-1] == (value, before)
        assert w.data.tobytes() != before  # the update came after the hook
    assert len(seen) == 4
    stats = step.stats
    assert {
        "flat": stats.flat_replays == 3,
        "calls fn": stats.flat_replays == 0 and stats.replays >= 2,
        "eager": stats.eager_calls == 4,
    }[form]

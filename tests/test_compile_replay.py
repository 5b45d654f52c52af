"""chainrule.compile's replay path: ops served from the recording (numbers as operands,
refilled inputs, swapped operands) stay bit for bit what eager mode computes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.compile.straightline import (
    _CHUNK,
    GENERATE_AFTER,
    Program,
    positional,
    straight_line,
)

DTYPES = (np.float32, np.float64)


def _pair(dtype: Any) -> tuple[list[cr.Tensor], list[cr.Tensor]]:
    """Two identical parameter sets: one for the compiled step, one for eager mode."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 2)).astype(dtype)
    bias = rng.normal(size=(2,)).astype(dtype)

    def make() -> list[cr.Tensor]:
        return [
            cr.tensor(weight.copy(), requires_grad=True),
            cr.tensor(bias.copy(), requires_grad=True),
        ]

    return make(), make()


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _step(params: list[cr.Tensor], body: Callable[..., cr.Tensor]) -> Callable[..., cr.Tensor]:
    optimizer = optim.SGD(params, lr=0.05)

    def step(*arguments: Any) -> cr.Tensor:
        optimizer.zero_grad()
        loss = body(params, *arguments)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _numbers(params: list[cr.Tensor], x: Any, y: Any, scale: float, shift: int) -> cr.Tensor:
    weight, bias = params
    p = ((cr.tensor(x) @ weight + bias) * scale + shift).sigmoid()
    target = cr.tensor(y)
    loss = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    return loss / scale + 2.0 ** (shift / 4) - 1 / (p * p + 1.5).sum()


@pytest.mark.parametrize("dtype", DTYPES)
def test_replay_serves_python_numbers_that_change_every_call(dtype: Any) -> None:
    """Numbers on either side of an op (new values each call) replay exactly like eager mode."""
    params, eager_params = _pair(dtype)
    compiled = cr.compile(_step(params, _numbers))
    eager = _step(eager_params, _numbers)
    rng = np.random.default_rng(1)
    for call in range(6):
        x = rng.normal(size=(5, 3)).astype(dtype)
        y = (rng.random((5, 2)) < 0.5).astype(dtype)
        scale, shift = 0.5 + call / 3, call - 2
        assert _same(compiled(x, y, scale, shift).data, eager(x, y, scale, shift).data), call
        for p, q in zip(params, eager_params):
            assert _same(p.data, q.data) and _same(p.grad, q.grad), call
    assert compiled.stats.replays == 5 and compiled.stats.divergences == 0


def _branching(params: list[cr.Tensor], x: Any, scale: float, smooth: bool) -> cr.Tensor:
    weight, bias = params
    h = (cr.tensor(x) @ weight) * scale + bias  # served from the recording, then...
    h = h.tanh() if smooth else h.relu()  # ...a different op: the rest of the call is eager
    return (h * h).mean() * (1 / scale)


def test_replay_leaving_after_number_ops_backpropagates_the_new_numbers() -> None:
    """An eager fallback after served number ops differentiates with this call's numbers."""
    params, eager_params = _pair(np.float64)
    compiled = cr.compile(_step(params, _branching), max_divergences=10)
    eager = _step(eager_params, _branching)
    rng = np.random.default_rng(2)
    for call in range(6):
        x = rng.normal(size=(4, 3))
        scale, smooth = 1.0 + call, call % 2 == 0
        assert _same(compiled(x, scale, smooth).data, eager(x, scale, smooth).data), call
        for p, q in zip(params, eager_params):
            assert _same(p.grad, q.grad) and _same(p.data, q.data), call
    assert compiled.stats.divergences == 3  # every other call leaves its recording


def _ordered(params: list[cr.Tensor], x: Any, flipped: bool) -> cr.Tensor:
    weight, bias = params
    h = cr.tensor(x) @ weight
    b = bias * 1.0
    d = b - h if flipped else h - b
    return (d * d).mean() * 0.5 - (d - 0.25).mean()


def test_replay_notices_operands_given_in_another_order() -> None:
    """The same op on swapped operands is another path: it is not served from the recording."""
    params, eager_params = _pair(np.float32)
    compiled = cr.compile(_step(params, _ordered), max_divergences=10)
    eager = _step(eager_params, _ordered)
    x = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)
    for call, flipped in enumerate([False, False, True, False, True, True]):
        assert _same(compiled(x, flipped).data, eager(x, flipped).data), call
        for p, q in zip(params, eager_params):
            assert _same(p.grad, q.grad) and _same(p.data, q.data), call
    assert compiled.stats.divergences >= 2


def test_replay_takes_a_number_where_a_zero_d_tensor_was_recorded() -> None:
    """A 0-d tensor argument recorded as an operand may come back as a number, exactly."""
    params, eager_params = _pair(np.float64)

    def body(ps: list[cr.Tensor], x: Any, factor: Any) -> cr.Tensor:
        return ((cr.tensor(x) @ ps[0] + ps[1]) * factor).tanh().sum()

    compiled = cr.compile(_step(params, body))
    eager = _step(eager_params, body)
    x = np.random.default_rng(4).normal(size=(4, 3))
    for call, factor in enumerate([cr.tensor(0.5), cr.tensor(0.75), 1.25, 3, cr.tensor(2.0)]):
        assert _same(compiled(x, factor).data, eager(x, factor).data), call
        for p, q in zip(params, eager_params):
            assert _same(p.grad, q.grad) and _same(p.data, q.data), call


def test_straight_line_program_makes_the_same_calls_in_order() -> None:
    """The generated function calls partials (args and keywords) and plain callables in order."""
    log: list[Any] = []
    total = np.zeros(3)
    instructions: list[Callable[[], Any]] = [
        functools.partial(np.add, total, 1.0, total),
        functools.partial(np.multiply, total, 3.0, out=total),
        lambda: log.append(total.copy()),
        functools.partial(log.append, "kept"),
        functools.partial(dict, **{"not an identifier": 1}),  # called as a whole
        functools.partial(np.add.reduce, total, axis=0, keepdims=True, out=np.empty(1)),
    ]
    expected_log: list[Any] = []
    reference = np.zeros(3)
    for _ in range(2):
        straight_line(instructions)()
        np.add(reference, 1.0, reference)
        np.multiply(reference, 3.0, out=reference)
        expected_log += [reference.copy(), "kept"]
    assert _same(total, reference)
    assert len(log) == len(expected_log)
    assert all(
        _same(a, b) if isinstance(b, np.ndarray) else a == b for a, b in zip(log, expected_log)
    )
    straight_line([])()  # an empty program is a function that does nothing


def test_straight_line_program_longer_than_one_chunk_keeps_the_order() -> None:
    """A program of several generated functions runs every instruction once, in order."""
    order: list[int] = []
    count = 3 * _CHUNK + 5
    straight_line([functools.partial(order.append, n) for n in range(count)])()
    assert order == list(range(count))


def test_recording_block_entered_again_follows_the_outer_mode() -> None:
    """A recording block kept and entered again takes the switches of the mode around it."""
    from chainrule.graph import grad_mode, recording

    recorder = object()
    block = recording(recorder)  # type: ignore[arg-type]
    before = grad_mode()
    for _ in range(2):
        with block:
            assert grad_mode().recorder is recorder and grad_mode().enabled
        with cr.no_grad(), block:
            assert grad_mode().recorder is recorder and not grad_mode().enabled
        assert grad_mode() is before


def test_program_loops_first_then_runs_its_generated_function_alike() -> None:
    """A Program gives the same calls before and after it switches to generated code."""
    order: list[int] = []
    program = Program([functools.partial(order.append, n) for n in range(3)])
    for _ in range(GENERATE_AFTER + 2):
        program()
    assert order == [0, 1, 2] * (GENERATE_AFTER + 2)
    assert program._function is not None


def test_replay_matches_transpose_and_reduction_params_by_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replayed step's .T, sum(axis=...) and mean() find their recorded params by
    identity, never comparing dicts, and train as eager mode does."""
    from chainrule.compile.recording import _Replayer

    (compiled_params, eager_params) = _pair(np.float64)

    def body(params: list[cr.Tensor], x: np.ndarray) -> cr.Tensor:
        weight, bias = params
        h = cr.tensor(x) @ weight.T.T + bias
        return h.sum(axis=0).sum(axis=0, keepdims=1).mean() + (h * h).mean(axis=(0, 1))

    step = cr.compile(_step(compiled_params, body))
    eager = _step(eager_params, body)
    x = np.random.default_rng(1).normal(size=(4, 3))
    assert _same(step(x).data, eager(x).data)  # the recording

    def compared(*_: Any) -> bool:
        raise AssertionError("a replayed op compared its params as dicts")

    monkeypatch.setattr(_Replayer, "_same_params", staticmethod(compared))
    for _ in range(3):
        assert _same(step(x).data, eager(x).data)
    assert step.stats.replays == 3 and step.stats.divergences == 0
    assert all(_same(a.data, b.data) for a, b in zip(compiled_params, eager_params))


def test_reduction_params_keep_their_meaning_when_shared() -> None:
    """Shared reduction params say what was asked: keepdims=1 keeps the axis like True."""
    t = cr.tensor(np.ones((2, 3)), requires_grad=True)
    assert t.sum(axis=1, keepdims=1).params is t.sum(axis=1, keepdims=True).params
    assert t.sum(axis=1, keepdims=1).shape == (2, 1)
    assert t.sum(axis=[0, 1]).params == {"axis": (0, 1), "keepdims": False}
    assert t.max(axis=1).params is t.sum(axis=1).params == {"axis": 1, "keepdims": False}


def test_positional_passes_out_and_reduction_axes_by_position_with_the_same_result() -> None:
    """positional() turns ufunc and ufunc.reduce calls with out= into positional calls
    writing the same bits, and leaves every other call as it is."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    cases = [
        (functools.partial(np.multiply, a, b, out=np.empty((5, 3))), (np.multiply, 3)),
        (functools.partial(np.tanh, a, out=np.empty((5, 3))), (np.tanh, 2)),
        (functools.partial(np.add.reduce, a, axis=0, out=np.empty(3)), (np.add.reduce, 5)),
        (
            functools.partial(np.add.reduce, a, axis=(0, 1), out=np.empty((1, 1)), keepdims=True),
            (np.add.reduce, 5),
        ),
        (functools.partial(np.maximum.reduce, a, out=np.empty(3)), (np.maximum.reduce, 5)),
    ]
    for instruction, (func, arity) in cases:
        converted = positional(instruction)
        assert converted.func == func and not converted.keywords and len(converted.args) == arity
        expected = instruction.keywords["out"].copy()
        instruction()
        expected[...] = instruction.keywords["out"]
        instruction.keywords["out"][...] = np.nan
        converted()
        assert _same(instruction.keywords["out"], expected)
    kept = [
        functools.partial(np.multiply, a, b),  # no out
        functools.partial(np.multiply, a, b, out=(np.empty((5, 3)),)),  # out as a tuple
        functools.partial(np.add, a, b, out=np.empty((5, 3)), where=a > 0),  # more keywords
        functools.partial(np.add.accumulate, a, axis=0, out=np.empty((5, 3))),
        functools.partial(np.maximum, a, 0.0, out=np.empty((5, 3))),  # numpy deprecates it
        functools.partial(np.minimum, a, b, out=np.empty((5, 3))),
        functools.partial(np.matmul, a, b.T, out=np.empty((5, 5)), axes=[(0, 1)] * 3),
        np.ones,
    ]
    for instruction in kept:
        assert positional(instruction) is instruction

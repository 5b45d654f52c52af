"""The backward walk: order, accumulation, no_grad, detect_anomaly and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr


def test_backward_handles_a_chain_of_100_000_nodes() -> None:
    """The topological order is iterative: a 100 000-node chain neither recurses nor fails."""
    x = cr.Value(0.5, "x")
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0

    t = cr.tensor([0.5, 1.0], requires_grad=True)
    u = t
    for _ in range(50_000):
        u = u + 1.0
    u.sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 1.0])


def test_shared_subexpressions_sum_over_paths() -> None:
    """b = a + a; c = b + b gives dc/da = 4 (every path is counted once)."""
    a = cr.Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0
    assert b.grad == 2.0

    t = cr.tensor(3.0, requires_grad=True)
    u = t + t
    (u + u).backward()
    assert float(t.grad) == 4.0


def test_backward_twice_doubles_leaf_grads_and_not_interior_ones() -> None:
    """Leaf gradients accumulate across calls; interior adjoints never leak into a later call."""
    x = cr.Value(2.0)
    h = x * x
    y = h * 3.0
    y.backward()
    first_x, first_h = x.grad, h.grad
    y.backward()
    assert x.grad == 2 * first_x
    assert h.grad == first_h

    t = cr.tensor([1.0, -2.0], requires_grad=True)
    inner = (t * t).retain_grad()
    out = (inner * 3.0).sum()
    out.backward()
    g1, i1 = t.grad.copy(), inner.grad.copy()
    out.backward()
    np.testing.assert_array_equal(t.grad, 2 * g1)
    np.testing.assert_array_equal(inner.grad, i1)


def test_zero_grad_resets_accumulation() -> None:
    """zero_grad() forgets earlier gradients."""
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    (t * t).sum().backward()
    t.zero_grad()
    assert t.grad is None
    (t * 2.0).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0, 2.0])
    v = cr.Value(1.0)
    (v * 5).backward()
    v.zero_grad()
    assert v.grad == 0.0


def test_two_leaves_of_one_add_do_not_share_a_grad_array() -> None:
    """Updating one leaf's grad in place leaves the other's untouched."""
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(np.array([1.0, 1.0]))
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_no_grad_records_nothing() -> None:
    """Inside no_grad() results do not require grad and keep no parents."""
    t = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        u = t * 2
        v = cr.Value(1.0) * 2
    assert not u.requires_grad and u.parents == ()
    assert v.parents == ()
    assert (t * 2).requires_grad


def test_detach_cuts_the_graph() -> None:
    """A detached tensor is a leaf: gradients stop there."""
    t = cr.tensor([2.0], requires_grad=True)
    (t * t.detach()).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0])
    x = cr.Value(3.0)
    (x * x.detach()).backward()
    assert x.grad == 3.0


def test_backward_on_a_vector_needs_an_explicit_grad() -> None:
    """backward() on a multi-element tensor without grad= says what to do."""
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\) needs grad="):
        (t * 2).backward()
    (t * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(t.grad, [2.0, 20.0])


def test_detect_anomaly_names_the_forward_op() -> None:
    """The first op producing NaN in the forward pass is named, with its input shapes."""
    t = cr.tensor([[1.0, -1.0]], requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match=r"forward of sqrt.*\(1, 2\)"):
        cr.sqrt(t * 2).sum()
    x = cr.Value(-1.0)
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match="forward of log"):
        cr.log(x + 0.5)


def test_detect_anomaly_names_the_backward_op() -> None:
    """A NaN/Inf appearing only in the backward pass names the op whose partial produced it."""
    t = cr.tensor([0.0, 4.0], requires_grad=True)
    out = cr.sqrt(t).sum()  # finite forward; ∂√t/∂t is infinite at 0
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match="backward of sqrt"):
        out.backward()


def test_detect_anomaly_on_sqrt_of_one_zero_backward_raises_anomaly_error() -> None:
    """Issue 13 item 7: an infinite one-element adjoint raises AnomalyError, not TypeError."""
    t = cr.tensor([0.0], requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(cr.AnomalyError, match=r"backward of sqrt.*0\.0"):
        cr.sqrt(t).backward(np.ones(1))


def test_without_detect_anomaly_domain_errors_behave_as_numpy() -> None:
    """log and sqrt outside their domain give NaN/−inf as numpy does, with no exception."""
    with np.errstate(all="ignore"):
        data = cr.log(cr.tensor([-1.0, 0.0])).data
        assert np.isnan(data[0]) and data[1] == -np.inf
    assert math.isnan(cr.log(cr.Value(-1.0)).data)
    assert cr.log(cr.Value(0.0)).data == -math.inf
    assert math.isnan(cr.sqrt(cr.Value(-4.0)).data)
    assert math.isnan(cr.log(-1.0))


def test_shape_errors_name_the_op_and_both_shapes() -> None:
    """A broadcast or matmul mismatch names the op and the two shapes."""
    a = cr.tensor(np.ones((2, 3)))
    with pytest.raises(cr.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\)"):
        a + np.ones(4)
    with pytest.raises(cr.ShapeError, match=r"matmul: shapes \(2, 3\) and \(2, 3\)"):
        a @ a
    with pytest.raises(cr.ShapeError, match="reshape"):
        a.reshape(4, 2)


def test_unsupported_operands_name_their_type() -> None:
    """Combining with an unsupported object names its type."""
    with pytest.raises(TypeError, match="str"):
        cr.Value(1.0) + "a"
    with pytest.raises(TypeError, match="dict"):
        cr.tensor([1.0]) * {}
    with pytest.raises(TypeError, match="Value"):
        cr.tensor([1.0]) + cr.Value(1.0)
    with pytest.raises(TypeError, match=r"float32 or float64"):
        cr.tensor([1], dtype="int64")


def test_float32_stays_float32_through_forward_and_backward() -> None:
    """A float32 graph keeps float32 values and gradients (python constants do not upcast)."""
    x = cr.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    w = cr.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    out = (cr.sigmoid(x @ w * 0.5 + 1.0) - 0.25).mean()
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_numpy_array_on_the_left_defers_to_the_tensor() -> None:
    """ndarray + Tensor is a Tensor in the graph, not an object array."""
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    out = np.array([1.0, 1.0]) * t
    assert isinstance(out, cr.Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 1.0])


def test_value_supports_reflected_operators_and_value_exponents() -> None:
    """Numbers on the left and Values as exponents have the right derivatives."""
    x = cr.Value(2.0)
    y = 3 - x
    z = 1 / x
    w = 2**x
    (y + z + w).backward()
    assert math.isclose(x.grad, -1 - 1 / 4 + math.log(2) * 4)


def test_values_at_domain_edges_give_numpys_numbers_not_exceptions() -> None:
    """1/0, 0/0, overflow and the slopes of √x and log x at 0 match numpy on Values."""
    with np.errstate(all="ignore"):
        expected = {
            "1/0": np.float64(1.0) / np.float64(0.0),
            "-2/0": np.float64(-2.0) / np.float64(0.0),
            "10**400": np.power(np.float64(10.0), 400.0),
        }
    assert (cr.Value(1.0) / 0).data == expected["1/0"]
    assert (cr.Value(-2.0) / 0.0).data == expected["-2/0"]
    assert math.isnan((cr.Value(0.0) / 0).data)
    assert (cr.Value(10.0) ** 400).data == expected["10**400"]
    z = cr.Value(0.0)
    cr.sqrt(z).backward()
    assert z.grad == math.inf
    w = cr.Value(0.0)
    cr.log(w).backward()
    assert w.grad == math.inf


def _random_value_graph(seed: int) -> tuple[cr.Value, list[cr.Value]]:
    """A random DAG of Values with shared subexpressions, from a seeded generator."""
    rng = np.random.default_rng(seed)
    leaves = [cr.Value(float(v), f"x{i}") for i, v in enumerate(rng.uniform(0.5, 1.5, 4))]
    nodes: list[cr.Value] = list(leaves)
    unary = [cr.sin, cr.tanh, cr.sigmoid, cr.exp, lambda v: v**2, lambda v: -v]
    binary = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / b]
    for _ in range(25):
        if rng.random() < 0.4:
            node = unary[rng.integers(len(unary))](nodes[rng.integers(len(nodes))])
        else:
            a, b = (nodes[i] for i in rng.integers(len(nodes), size=2))
            node = binary[rng.integers(len(binary))](a, b)
        if abs(node.data) < 1e3:  # keep exp and / from running away
            nodes.append(node)
    out = nodes[-1]
    for node in nodes[-6:-1]:
        out = out + node
    return out, leaves


@pytest.mark.parametrize("seed", range(12))
def test_value_walk_equals_the_generic_walk_bit_for_bit(seed: int) -> None:
    """Values' own backward walk gives exactly the generic walk's gradients, twice over."""
    from chainrule.graph import walk_backward

    out, leaves = _random_value_graph(seed)
    out.backward()
    out.backward()
    fast = [leaf.grad for leaf in leaves]
    for leaf in leaves:
        leaf.zero_grad()
    walk_backward(out, 1.0)
    walk_backward(out, 1.0)
    assert [leaf.grad for leaf in leaves] == fast


def test_value_walk_restores_leaf_grads_after_an_error() -> None:
    """An exception mid-walk leaves every leaf's earlier grad as it was and no marks behind."""
    from chainrule import ops
    from chainrule.ops import Op, Partial
    from chainrule.value import _apply

    def broken(xp: object, out: float, a: float) -> float:
        raise RuntimeError("broken partial")

    bad = Op("bad", lambda xp, a: a, (Partial("1", broken),), "a")
    x, y = cr.Value(1.0, "x"), cr.Value(2.0, "y")
    (x * y).backward()
    before = (x.grad, y.grad)
    out = _apply(ops.MUL, (_apply(bad, (x,)), y))
    with pytest.raises(RuntimeError, match="broken partial"):
        out.backward()
    assert (x.grad, y.grad) == before
    assert isinstance(out.grad, float)

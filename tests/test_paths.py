"""Tests for chainrule.explanations.paths: derivatives as sums over paths, and their cost."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule
from chainrule import Value
from chainrule.errors import ChainruleError
from chainrule.explanations import PathExplanation, explain
from chainrule.explanations.paths import TooManyPathsError, _Names, all_nodes, mlp_path_count
from chainrule.expressions import to_graph

F_TEXT = "cos(x**2*y) + x**2*sqrt(z)"


def _handout_f(x: float = 1.0, y: float = 2.0, z: float = 3.0) -> tuple[Value, dict[str, Value]]:
    output, leaves = to_graph(F_TEXT, {"x": x, "y": y, "z": z})
    output.label = "f"
    return output, leaves


def _edge_count(output: Value) -> int:
    return sum(len(node.parents) for node in all_nodes(output))


# --- the handout's f(x, y, z) ------------------------------------------------------------


def test_explain_handout_f_paths_and_factors_for_x() -> None:
    """∂f/∂x has the two paths of eq. (3), with the partials the handout writes on edges."""
    output, leaves = _handout_f()
    result = explain(output, leaves["x"])
    assert isinstance(result, PathExplanation)
    assert result.path_count == 2 and len(result.paths) == 2
    symbols = [[factor.symbol for factor in path.factors] for path in result.paths]
    assert ["2·x", "y", "−sin(x²·y)", "1"] in symbols
    assert ["2·x", "√z", "1"] in symbols
    for path in result.paths:
        assert path.nodes[0] is leaves["x"] and path.nodes[-1] is output
        assert path.names[0] == "x" and path.names[-1] == "f"
        assert path.product == pytest.approx(math.prod(f.value for f in path.factors))


def test_explain_handout_f_sums_equal_closed_forms_and_backprop() -> None:
    """The path sums equal eqs. (3)-(5) and the backprop adjoints, at a random point."""
    x, y, z = 0.8, -1.7, 2.4
    output, _ = _handout_f(x, y, z)
    closed = {
        "x": -2 * x * y * math.sin(x * x * y) + 2 * x * math.sqrt(z),
        "y": -(x * x) * math.sin(x * x * y),
        "z": x * x / (2 * math.sqrt(z)),
    }
    for name, expected in closed.items():
        result = explain(output, name)
        assert result.total == pytest.approx(expected, rel=1e-12)
        assert result.backprop == pytest.approx(expected, rel=1e-12)
        assert result.agrees is True
    assert explain(output, "y").path_count == 1
    assert explain(output, "z").path_count == 1


def test_explain_edge_values_are_the_op_rows_partials() -> None:
    """Each factor's number is the op row's local partial at the point (e.g. −sin(x²y))."""
    x, y = 1.1, 0.6
    output, leaves = _handout_f(x, y, 2.0)
    result = explain(output, leaves["x"])
    path = next(p for p in result.paths if len(p.factors) == 4)
    assert [f.value for f in path.factors] == pytest.approx([2 * x, y, -math.sin(x * x * y), 1.0])
    assert [f.input_index for f in path.factors] == [0, 0, 0, 0]


def test_explain_leaves_grads_untouched() -> None:
    """Explaining never changes any node's grad (its backprop pass is private)."""
    output, leaves = _handout_f()
    output.backward()
    before = {name: leaf.grad for name, leaf in leaves.items()}
    explain(output, leaves["x"])
    explain(output, leaves["z"])
    assert {name: leaf.grad for name, leaf in leaves.items()} == before


def test_explain_report_is_a_readable_table() -> None:
    """The report lists the paths, the sum, backprop with 'agrees', the legend and the cost."""
    output, leaves = _handout_f()
    report = str(explain(output, leaves["x"]))
    assert "∂f/∂x" in report
    assert "x → x² → x²·y → cos(x²·y) → f" in report
    assert "2·x × √z × 1" in report
    assert "(agrees)" in report
    assert "sum over 2 paths" in report
    assert "backprop 9 multiply-adds" in report
    ascii_report = explain(output, leaves["x"], unicode=False).report
    assert ascii_report.isascii()
    assert "x -> x**2 -> x**2*y -> cos(x**2*y) -> f" in ascii_report


def test_explain_names_long_interior_formulas_and_defines_them() -> None:
    """Nodes whose formula is long get u1, u2, … and a 'where' line defining them."""
    x = Value(0.3, "x")
    w = Value(1.5, "w")
    h = chainrule.tanh(chainrule.sigmoid(x * w + x) * w + chainrule.sin(x))
    result = explain(h, x)
    assert result.definitions
    report = result.report
    assert "where" in report
    for name, formula in result.definitions.items():
        assert f"{name} = {formula}" in report
    assert result.agrees


def test_explain_parenthesises_a_compound_factor_in_the_product() -> None:
    """∂((1 − y)·log(1 − z))/∂z shows its factor 1 − y as (1 − y) between the × signs."""
    y, z = Value(1.0, "y"), Value(0.3, "z")
    result = explain((1 - y) * chainrule.log(1 - z), z)
    (path,) = result.paths
    assert [f.symbol for f in path.factors] == ["−1", "1/(1 − z)", "1 − y"]
    assert "−1 × 1/(1 − z) × (1 − y)" in result.report
    assert (
        "-1 * 1/(1 - z) * (1 - y)"
        in explain((1 - y) * chainrule.log(1 - z), z, unicode=False).report
    )
    assert "-0" not in result.report.replace("-0.", "")  # −1 × … × 0 is shown as 0


def test_explain_writes_label_markup_as_readable_text() -> None:
    """Labels such as w_{1} read w₁ in the report (w_1 in ASCII), never as raw markup."""
    w, x = Value(0.5, "w_{1}"), Value(2.0, "x^{(1)}")
    result = explain(chainrule.sigmoid(w * x), w)
    assert result.wrt_name == "w₁"
    assert result.paths[0].names == ("w₁", "w₁·x⁽¹⁾", "f")
    assert "{" not in result.report and "w₁ = 0.5" in result.report
    ascii_report = explain(chainrule.sigmoid(w * x), w, unicode=False).report
    assert ascii_report.isascii() and "w_1 -> w_1*x^(1) -> f" in ascii_report


def test_explain_names_never_fold_a_node_into_its_value() -> None:
    """0·log(1 − z) keeps its name; the sum through it does not take y·log(z)'s name."""
    z, y = chainrule.tensor(0.3, requires_grad=True, label="z"), chainrule.tensor(1.0, label="y")
    loss = -(y * chainrule.log(z) + (1 - y) * chainrule.log(1 - z))
    result = explain(loss, z)
    names = [path.names for path in result.paths]
    assert ("z", "1 − z", "log(1 − z)", "0·log(1 − z)", "u1", "f") in names
    assert result.definitions == {"u1": "y·log(z) + 0·log(1 − z)"}
    assert result.output_formula == "−u1" and result.agrees


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 12))
def test_names_are_unique_on_random_graphs(seed: int, leaves: int, steps: int) -> None:
    """In explanations and diagrams alike, no two nodes but constants share a name."""
    output, _ = _random_graph(seed, leaves, steps)
    names = _Names(all_nodes(output), output, True)
    shown = [names[node] for node in all_nodes(output) if node.op is not None or node.label]
    assert len(shown) == len(set(shown))
    diagram = chainrule.draw(output, engine="python")
    drawn = [node.name for node in diagram.nodes if node.kind != "constant"]
    assert len(drawn) == len(set(drawn))


# --- random graphs ---------------------------------------------------------------------------

_UNARY: list[Callable[[Value], Value]] = [
    chainrule.sin,
    chainrule.cos,
    chainrule.tanh,
    chainrule.sigmoid,
    chainrule.softplus,
    lambda v: v**2,
    lambda v: -v,
    lambda v: chainrule.sqrt(1.0 + v * v),
    lambda v: chainrule.exp(chainrule.tanh(v)),
]
_BINARY: list[Callable[[Value, Value], Value]] = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / (2.0 + chainrule.sin(b)),
    lambda a, b: chainrule.maximum(a, b),
]


def _random_graph(seed: int, leaves: int, steps: int) -> tuple[Value, list[Value]]:
    rng = random.Random(seed)
    inputs = [Value(rng.uniform(-1.5, 1.5), f"x{i}") for i in range(leaves)]
    nodes = list(inputs)
    for _ in range(steps):
        if rng.random() < 0.45:
            nodes.append(rng.choice(_UNARY)(rng.choice(nodes)))
        else:
            nodes.append(rng.choice(_BINARY)(rng.choice(nodes), rng.choice(nodes)))
    output = nodes[-1]
    for node in nodes[-3:-1]:
        output = output + node
    return output, inputs


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 12))
def test_explain_path_sum_equals_backprop_on_random_graphs(
    seed: int, leaves: int, steps: int
) -> None:
    """On random DAGs, Σ over paths of Π partials equals backward's grad for every input."""
    output, inputs = _random_graph(seed, leaves, steps)
    output.backward()
    for leaf in inputs:
        result = explain(output, leaf, max_paths=100_000)
        assert result.path_count == len(result.paths)
        assert result.path_factor_count == sum(len(p.factors) for p in result.paths)
        assert result.backprop == pytest.approx(leaf.grad, rel=1e-12, abs=1e-12)
        assert result.total == pytest.approx(leaf.grad, rel=1e-9, abs=1e-9)
        assert result.agrees is True
        assert result.backprop_multiply_adds == _edge_count(output)


def test_explain_counts_paths_without_listing_them() -> None:
    """With max_paths=0 the exact count still comes out, equal to the enumeration's."""
    for seed in range(20):
        output, inputs = _random_graph(seed, 3, 14)
        listed = explain(output, inputs[0], max_paths=1_000_000)
        counted = explain(output, inputs[0], max_paths=0)
        assert counted.path_count == listed.path_count == len(listed.paths)
        assert counted.path_factor_count == listed.path_factor_count
        if listed.path_count:
            assert counted.refused is not None and counted.paths == []


def test_explain_through_an_interior_node_gives_its_adjoint() -> None:
    """wrt may be an interior node: the path sum is then that node's adjoint."""
    x, y = Value(0.4, "x"), Value(-1.2, "y")
    u = x * y
    output = chainrule.sin(u) + u * x
    output.backward()
    result = explain(output, u)
    assert result.path_count == 2
    assert result.total == pytest.approx(u.grad)


def test_explain_wrt_that_does_not_reach_the_output() -> None:
    """A leaf the output does not depend on has no path and a zero derivative."""
    x = Value(1.0, "x")
    output = x * 3.0
    unrelated = Value(5.0, "w")
    result = explain(output, unrelated)
    assert result.path_count == 0 and result.paths == []
    assert result.total == 0.0 and result.backprop == 0.0 and result.agrees
    assert "no path leads from w" in result.report


def test_explain_wrt_the_output_itself() -> None:
    """∂f/∂f is one empty path with product 1."""
    x = Value(1.0, "x")
    output = chainrule.sin(x)
    result = explain(output, output)
    assert result.path_count == 1 and result.paths[0].factors == ()
    assert result.total == 1.0 and result.backprop == 1.0


def test_explain_wrt_by_label_and_errors() -> None:
    """wrt may be a label; unknown and ambiguous labels are clear errors."""
    output, leaves = _handout_f()
    assert explain(output, "z").wrt is leaves["z"]
    with pytest.raises(ChainruleError, match="no node labelled 'q'"):
        explain(output, "q")
    twin = Value(1.0, "x") * leaves["x"]
    with pytest.raises(ChainruleError, match="2 nodes are labelled 'x'"):
        explain(twin, "x")
    with pytest.raises(ValueError, match="max_paths"):
        explain(output, "x", max_paths=-1)


# --- MLPs: exponential paths, linear backprop ---------------------------------------------------


def _neuron_mlp(sizes: list[int], seed: int = 0) -> tuple[Value, list[Value], dict[int, Value]]:
    """A handout-style MLP of scalar Values with a loss summed over the outputs.

    Returns the loss, the input units and one weight per layer k (feeding layer k+1).
    """
    rng = random.Random(seed)
    inputs = [Value(rng.uniform(-1, 1), f"x{j + 1}") for j in range(sizes[0])]
    units: list[Value] = list(inputs)
    first_weight: dict[int, Value] = {}
    for k in range(1, len(sizes)):
        next_units = []
        for i in range(sizes[k]):
            bias = Value(rng.uniform(-0.5, 0.5), f"w{k}[{i + 1},{sizes[k - 1] + 1}]")
            total: Value = bias
            for j, unit in enumerate(units):
                weight = Value(rng.uniform(-1, 1), f"w{k}[{i + 1},{j + 1}]")
                first_weight.setdefault(k, weight)
                total = total + weight * unit
            next_units.append(chainrule.sigmoid(total))
        units = next_units
    loss = units[0]
    for unit in units[1:]:
        loss = loss + unit
    return loss, inputs, first_weight


@pytest.mark.parametrize("depth", [2, 3, 4, 5, 6])
def test_mlp_path_counts_match_the_closed_form(depth: int) -> None:
    """Paths from an input or a weight to the loss number n_{k+1}·…·n_m (the closed form)."""
    rng = random.Random(depth)
    sizes = [rng.randint(1, 4) for _ in range(depth)]
    loss, inputs, weights = _neuron_mlp(sizes, seed=depth)
    assert explain(loss, inputs[0], max_paths=0).path_count == mlp_path_count(sizes, 1)
    for k, weight in weights.items():
        assert explain(loss, weight, max_paths=0).path_count == mlp_path_count(sizes, k + 1)
    listed = explain(loss, inputs[-1])
    assert listed.path_count == len(listed.paths) == mlp_path_count(sizes, 1)
    assert listed.agrees


def test_mlp_path_count_closed_form() -> None:
    """The closed form is the product of the widths after the unit's layer."""
    assert mlp_path_count([4, 2, 3, 1], 1) == 6  # the quiz's 4→2→3→1 network
    assert mlp_path_count([4, 2, 3, 1], 3) == 1
    assert mlp_path_count([3, 2, 1], 1) == 2  # the Titanic network
    with pytest.raises(ValueError):
        mlp_path_count([3, 2, 1], 4)
    with pytest.raises(ValueError):
        mlp_path_count([3, 0, 1], 1)


def test_mlp_paths_grow_exponentially_while_backprop_grows_linearly() -> None:
    """Quiz 2.7 / assignment §6: paths multiply with depth, backprop's work adds up."""
    width = 4
    counts, path_costs, backprop_costs = [], [], []
    for depth in range(2, 7):
        loss, inputs, _ = _neuron_mlp([width] * depth, seed=1)
        result = explain(loss, inputs[0], max_paths=0)
        counts.append(result.path_count)
        path_costs.append(result.path_factor_count)
        backprop_costs.append(result.backprop_multiply_adds)
        assert result.backprop_multiply_adds == _edge_count(loss)
    assert counts == [width ** (d - 1) for d in range(2, 7)]
    # every extra layer adds the same number of edges to backprop's walk …
    steps = [later - earlier for earlier, later in itertools.pairwise(backprop_costs)]
    assert len(set(steps[1:])) == 1
    # … while the path sum's cost multiplies, and overtakes backprop
    assert all(later > 3 * earlier for earlier, later in itertools.pairwise(path_costs))
    assert path_costs[-1] > 10 * backprop_costs[-1]


def test_explain_refuses_politely_with_the_count() -> None:
    """Over max_paths: no exception, nothing listed, and the count and reason are reported."""
    loss, inputs, _ = _neuron_mlp([3, 3, 3, 3, 1], seed=2)
    result = explain(loss, inputs[0], max_paths=10)
    assert result.path_count == 27
    assert result.refused is not None and "27 paths" in result.refused
    assert result.paths == [] and result.total is None and result.agrees is None
    assert result.backprop == pytest.approx(explain(loss, inputs[0]).total)
    assert "paths not listed: 27 paths" in result.report
    with pytest.raises(TooManyPathsError, match="27 paths") as caught:
        explain(loss, inputs[0], max_paths=10, raise_if_too_many=True)
    assert caught.value.path_count == 27


def test_explain_counts_huge_path_numbers_exactly() -> None:
    """A deep, wide graph has more paths than a float holds exactly; the count is exact."""
    x = Value(0.1, "x")
    node = x
    for _ in range(70):  # each step doubles the paths: 2**70
        node = chainrule.sin(node) + chainrule.cos(node)
    result = explain(node, x)
    assert result.path_count == 2**70
    assert result.refused is not None
    assert result.backprop_multiply_adds == 4 * 70


# --- tensors: a vector leaf (exercise 3(b)) ---------------------------------------------------


def test_explain_vector_leaf_gives_gradient_of_c_transpose_x_squared() -> None:
    """f = (cᵀx)²: one path whose first edge carries the gradient cᵀ; sum = 2(cᵀx)c (eq. 6)."""
    c_values = np.array([1.0, -2.0, 0.5])
    x_values = np.array([0.3, 0.7, -1.1])
    c = chainrule.tensor(c_values, label="c")
    x = chainrule.tensor(x_values, requires_grad=True, label="x")
    f = (c @ x) ** 2
    result = explain(f, x)
    assert result.path_count == 1
    assert [factor.symbol for factor in result.paths[0].factors] == ["cᵀ", "2·(c @ x)"]
    expected = 2 * (c_values @ x_values) * c_values
    np.testing.assert_allclose(result.total, expected, rtol=1e-12)
    np.testing.assert_allclose(result.backprop, expected, rtol=1e-12)
    assert result.agrees
    assert x.grad is None  # explaining ran no backward on the tensors


def test_explain_tensor_elements_through_indexing() -> None:
    """Paths through x[0], x[1], x[2] carry one-hot gradients that add up to ∇f."""
    x = chainrule.tensor([0.5, 1.0, 2.0], requires_grad=True, label="x")
    f = x[0] * x[1] + chainrule.sin(x[2])
    result = explain(f, "x")
    assert result.path_count == 3
    np.testing.assert_allclose(result.total, [1.0, 0.5, math.cos(2.0)], rtol=1e-12)
    assert result.agrees


def test_explain_refuses_vector_nodes_on_paths() -> None:
    """A multi-element interior node on a path is refused with a message that names it."""
    x = chainrule.tensor([0.5, 1.0, 2.0], requires_grad=True, label="x")
    with pytest.raises(ChainruleError, match="shape"):
        explain((x * x).sum(), x)
    with pytest.raises(ChainruleError, match="one-number output"):
        explain(x * 2.0, x)


def test_explain_ascii_report_stays_ascii_when_refused_or_truncated() -> None:
    """unicode=False reports are pure ASCII, also when refused or cut to max_rows."""
    loss, inputs, _ = _neuron_mlp([3, 3, 3, 1], seed=4)
    refused = explain(loss, inputs[0], max_paths=2, unicode=False)
    assert refused.report.isascii() and "paths not listed" in refused.report
    listed = explain(loss, inputs[0], unicode=False)
    shortened = listed.format(max_rows=2)
    assert shortened.isascii() and "and 7 more paths" in shortened
    assert len(listed.paths) == 9 and "more paths" not in listed.format()


def test_chainrule_explain_stays_the_function_after_the_package_is_imported() -> None:
    """chainrule.explain(output, wrt) works once the explanations package is imported."""
    import chainrule.explanations

    x = Value(0.5, "x")
    result = chainrule.explain(chainrule.sin(x), x)
    assert result.total == pytest.approx(math.cos(0.5))
    assert chainrule.explanations.explain is explain

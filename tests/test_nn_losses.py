"""Tests for chainrule.nn losses: values, gradients, stability and target checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

RNG = np.random.default_rng(0)
LABELS = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])


def _sigmoid(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


# --- gradient checks in float64 ---------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    ("loss", "make_prediction"),
    [
        (nn.square_loss, lambda z: z),
        (nn.mse_loss, lambda z: z),
        (nn.log_loss, lambda z: z.sigmoid()),
        (nn.binary_cross_entropy, lambda z: z.sigmoid()),
        (nn.binary_cross_entropy_with_logits, lambda z: z),
    ],
)
def test_elementwise_losses_pass_gradcheck(
    loss: Callable[..., Any], make_prediction: Callable[[Any], Any], reduction: str
) -> None:
    """Each elementwise loss agrees with central differences in float64."""
    logits = RNG.normal(size=(3, 2))
    result = cr.gradcheck(lambda z: loss(make_prediction(z), LABELS, reduction), logits)
    assert result, result.report


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_passes_gradcheck_with_indices_and_one_hot(reduction: str) -> None:
    """cross_entropy agrees with central differences for both target forms."""
    logits = RNG.normal(size=(4, 3))
    classes = np.array([0, 2, 1, 2])
    assert cr.gradcheck(lambda z: nn.cross_entropy(z, classes, reduction), logits)
    soft = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.1, 0.8, 0.1]])
    assert cr.gradcheck(lambda z: nn.cross_entropy(z, soft, reduction), logits)


def test_value_losses_pass_gradcheck() -> None:
    """The losses on Values agree with central differences too."""
    assert cr.gradcheck(lambda p: nn.square_loss(p, 0.25), cr.Value(0.7))
    assert cr.gradcheck(lambda p: nn.log_loss(p, 1.0), cr.Value(0.3))
    assert cr.gradcheck(lambda p: nn.log_loss(p, 0.0), cr.Value(0.3))
    assert cr.gradcheck(lambda z: nn.binary_cross_entropy_with_logits(z, 1.0), cr.Value(-0.8))
    assert cr.gradcheck(lambda a: nn.square_loss([a, a * 2.0], [1.0, 0.0]), cr.Value(0.4))


# --- closed forms from the handouts -----------------------------------------------------------


def test_square_loss_gradient_is_the_quiz_exercise_1_closed_form() -> None:
    """∂L/∂w_j = −2(y − f)·f(1 − f)·x_j for L = (y − σ(w0 + w1x1 + w2x2))² (x_0 = 1)."""
    x1, x2, y = 0.8, -1.5, 1.0
    w = [cr.Value(0.3, "w0"), cr.Value(-0.4, "w1"), cr.Value(0.25, "w2")]
    f = (w[0] + w[1] * x1 + w[2] * x2).sigmoid()
    nn.square_loss(f, y).backward()
    s = 0.3 - 0.4 * x1 + 0.25 * x2
    f_value = _sigmoid(s)
    # The quiz's form: ∂f/∂w_j = x_j·e^{−s}/(1 + e^{−s})², ∂L/∂f = −2(y − f).
    df_dw = [x * math.exp(-s) / (1 + math.exp(-s)) ** 2 for x in (1.0, x1, x2)]
    for weight, partial in zip(w, df_dw):
        assert weight.grad == pytest.approx(-2 * (y - f_value) * partial, rel=1e-13)


@pytest.mark.parametrize("form", ["probabilities", "logits"])
def test_log_loss_gradient_is_assignment_equation_8(form: str) -> None:
    """∇_w l = Σ_i [−x_i y_i (1 − σ(wᵀx_i)) + x_i (1 − y_i) σ(wᵀx_i)] (eq. 8, summed)."""
    x = RNG.normal(size=(6, 3))
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    w = cr.tensor([0.4, -0.7, 0.2], requires_grad=True)
    scores = x @ w
    if form == "probabilities":
        loss = nn.log_loss(scores.sigmoid(), y, reduction="sum")
    else:
        loss = nn.binary_cross_entropy_with_logits(scores, y, reduction="sum")
    loss.backward()
    sigma = _sigmoid(x @ w.data)
    expected = (-x * (y * (1 - sigma))[:, None] + x * ((1 - y) * sigma)[:, None]).sum(axis=0)
    np.testing.assert_allclose(w.grad, expected, rtol=1e-13)
    # eq. 7: the loss itself
    value = np.sum(-y * np.log(sigma) - (1 - y) * np.log(1 - sigma))
    assert loss.item() == pytest.approx(value, rel=1e-13)


def test_cross_entropy_gradient_is_softmax_minus_one_hot() -> None:
    """∂CE/∂z = (softmax(z) − onehot(y)) / batch for the mean reduction."""
    z = cr.tensor(RNG.normal(size=(5, 4)), requires_grad=True)
    classes = np.array([3, 0, 1, 1, 2])
    loss = nn.cross_entropy(z, classes)
    loss.backward()
    softmax = np.exp(z.data) / np.exp(z.data).sum(axis=1, keepdims=True)
    one_hot = np.eye(4)[classes]
    np.testing.assert_allclose(z.grad, (softmax - one_hot) / 5, rtol=1e-12, atol=1e-16)
    expected = -np.mean(np.log(softmax[np.arange(5), classes]))
    assert loss.item() == pytest.approx(expected, rel=1e-13)
    assert nn.cross_entropy(z, one_hot).item() == pytest.approx(expected, rel=1e-13)


# --- values and reductions --------------------------------------------------------------------


def test_square_loss_value_and_reductions() -> None:
    """square_loss is (y − ŷ)² per element; mean divides by the element count."""
    prediction = cr.tensor([[0.5, 2.0], [1.0, -1.0]])
    target = np.array([[1.0, 0.0], [1.0, 1.0]])
    elementwise = (target - prediction.data) ** 2
    np.testing.assert_array_equal(nn.square_loss(prediction, target, "none").data, elementwise)
    assert nn.square_loss(prediction, target, "sum").item() == elementwise.sum()
    assert nn.mse_loss(prediction, target).item() == pytest.approx(elementwise.mean(), rel=1e-15)
    value = nn.square_loss(cr.Value(0.25), 1.0)
    assert isinstance(value, cr.Value) and value.data == 0.5625


def test_losses_on_value_lists_reduce_like_tensors() -> None:
    """A list of Values (a neuron-level output layer) reduces like the Tensor form."""
    units = [cr.Value(0.2), cr.Value(0.9)]
    target = [0.0, 1.0]
    expected = nn.log_loss(cr.tensor([0.2, 0.9]), target).item()
    assert nn.log_loss(units, target).data == pytest.approx(expected, rel=1e-15)
    separate = nn.log_loss(units, target, reduction="none")
    assert [term.data for term in separate] == pytest.approx(
        [-math.log(0.8), -math.log(0.9)], rel=1e-15
    )
    with pytest.raises(cr.ShapeError, match=r"2 predicted Value\(s\) but 3"):
        nn.square_loss(units, [1.0, 2.0, 3.0])


def test_target_of_shape_n_fits_a_prediction_of_shape_n_by_1() -> None:
    """A label vector (n,) is accepted for a single-output network's (n, 1) prediction."""
    prediction = cr.tensor([[0.2], [0.7], [0.4]])
    column = nn.log_loss(prediction, np.array([[0.0], [1.0], [1.0]])).item()
    assert nn.log_loss(prediction, [0, 1, 1]).item() == column
    assert nn.log_loss(prediction, [True, False, True]).item() > 0


def test_loss_modules_and_get_loss_match_the_functions() -> None:
    """MSELoss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss and get_loss agree."""
    z = cr.tensor(RNG.normal(size=(3, 2)))
    p = z.sigmoid()
    pairs = [
        (nn.MSELoss(), nn.mse_loss, z, LABELS),
        (nn.BCELoss(reduction="sum"), lambda a, b: nn.log_loss(a, b, "sum"), p, LABELS),
        (nn.BCEWithLogitsLoss(), nn.binary_cross_entropy_with_logits, z, LABELS),
        (nn.CrossEntropyLoss(), nn.cross_entropy, z, np.array([1, 0, 1])),
    ]
    for module, function, prediction, target in pairs:
        assert module(prediction, target).item() == function(prediction, target).item()
    names = {
        "mse": nn.MSELoss,
        "square": nn.MSELoss,
        "log_loss": nn.BCELoss,
        "bce": nn.BCELoss,
        "bce_with_logits": nn.BCEWithLogitsLoss,
        "cross_entropy": nn.CrossEntropyLoss,
    }
    for name, cls in names.items():
        assert type(nn.get_loss(name)) is cls
    assert nn.get_loss("MSE", reduction="sum").reduction == "sum"  # type: ignore[attr-defined]
    assert nn.get_loss(nn.mse_loss) is nn.mse_loss


def test_get_loss_unknown_name_lists_known_losses() -> None:
    """An unknown loss name fails with the list of known ones."""
    with pytest.raises(ValueError, match=r"known losses: .*bce_with_logits.*cross_entropy.*mse"):
        nn.get_loss("hinge")


def test_reduction_must_be_mean_sum_or_none() -> None:
    """Any other reduction is refused by the functions and the modules."""
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'"):
        nn.mse_loss(cr.tensor([1.0]), [1.0], reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="max")


# --- numerical stability ----------------------------------------------------------------------


def test_bce_with_logits_is_exact_at_plus_minus_1e4() -> None:
    """At logits ±1e4 the loss is 0 or 1e4 exactly and the gradient is σ(z) − y."""
    z = cr.tensor([1e4, -1e4, 1e4, -1e4], requires_grad=True)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    losses = nn.binary_cross_entropy_with_logits(z, y, reduction="none")
    np.testing.assert_array_equal(losses.data, [0.0, 0.0, 1e4, 1e4])
    losses.sum().backward()
    np.testing.assert_array_equal(z.grad, [0.0, 0.0, 1.0, -1.0])
    value = cr.Value(-1e4)
    loss = nn.binary_cross_entropy_with_logits(value, 1.0)
    loss.backward()
    assert loss.data == 1e4 and value.grad == -1.0


def test_cross_entropy_is_exact_at_plus_minus_1e4() -> None:
    """Logits ±1e4 give losses 0 and 2e4 and finite softmax − onehot gradients."""
    z = cr.tensor([[1e4, -1e4], [1e4, -1e4]], requires_grad=True)
    losses = nn.cross_entropy(z, [0, 1], reduction="none")
    np.testing.assert_array_equal(losses.data, [0.0, 2e4])
    losses.sum().backward()
    np.testing.assert_array_equal(z.grad, [[0.0, 0.0], [1.0, -1.0]])


def test_log_loss_stays_finite_at_probabilities_0_and_1() -> None:
    """Probabilities of exactly 0 or 1 give a loss capped at 100, never inf or NaN."""
    p = cr.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    losses = nn.log_loss(p, [0, 1, 1, 0], reduction="none")
    np.testing.assert_allclose(losses.data, [0.0, 0.0, 100.0, 100.0], atol=1e-12)
    losses.sum().backward()
    assert np.all(np.isfinite(p.grad))


def test_float32_losses_stay_float32() -> None:
    """A float32 prediction gives a float32 loss and gradient."""
    z = cr.tensor(RNG.normal(size=(3, 2)), dtype="float32", requires_grad=True)
    loss = nn.binary_cross_entropy_with_logits(z, LABELS)
    assert loss.dtype == np.float32
    loss.backward()
    assert z.grad.dtype == np.float32


# --- target checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loss", [nn.log_loss, nn.binary_cross_entropy, nn.binary_cross_entropy_with_logits]
)
def test_binary_losses_refuse_labels_outside_0_and_1(loss: Callable[..., Any]) -> None:
    """Labels such as 2 or −1 raise a TargetError saying which values and where."""
    prediction = cr.tensor([0.2, 0.6, 0.9])
    with pytest.raises(nn.TargetError, match=r"labels 0 or 1.*1 other value\(s\) \(2\).*\(2,\)"):
        loss(prediction, [0, 1, 2])
    with pytest.raises(nn.TargetError, match="-1"):
        loss(cr.Value(0.5), -1.0)


def test_losses_refuse_mismatched_shapes_naming_both() -> None:
    """A target of another shape raises a ShapeError naming both shapes."""
    with pytest.raises(
        cr.ShapeError, match=r"prediction has shape \(4, 2\).*target has shape \(4,\)"
    ):
        nn.mse_loss(cr.tensor(np.zeros((4, 2))), np.zeros(4))
    with pytest.raises(cr.ShapeError, match=r"\(3, 1\).*\(2,\)"):
        nn.binary_cross_entropy_with_logits(cr.tensor(np.zeros((3, 1))), [0, 1])


def test_losses_refuse_nan_targets() -> None:
    """NaN or infinite targets raise a TargetError with their count and first index."""
    with pytest.raises(
        nn.TargetError, match=r"2 NaN or infinite value\(s\), the first at index \(1,\)"
    ):
        nn.mse_loss(cr.tensor([1.0, 2.0, 3.0]), [1.0, np.nan, np.inf])


def test_log_loss_refuses_predictions_outside_0_1() -> None:
    """log_loss on values outside [0, 1] points to the logits form."""
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits"):
        nn.log_loss(cr.tensor([0.5, 1.7]), [0, 1])


def test_cross_entropy_refuses_bad_class_targets() -> None:
    """Out-of-range, fractional and mismatched class targets are refused clearly."""
    logits = cr.tensor(np.zeros((3, 4)))
    with pytest.raises(nn.TargetError, match=r"0 to 3 .*4 columns.*\(4, 7\).*index 1"):
        nn.cross_entropy(logits, [0, 4, 7])
    with pytest.raises(nn.TargetError, match="0 to 3"):
        nn.cross_entropy(logits, [0, -1, 2])
    with pytest.raises(nn.TargetError, match="whole numbers"):
        nn.cross_entropy(logits, [0.5, 1.0, 2.0])
    with pytest.raises(cr.ShapeError, match=r"\(3, 4\) \(3 examples\).*\(2,\)"):
        nn.cross_entropy(logits, [0, 1])
    with pytest.raises(cr.ShapeError, match=r"\(3, 4\).*\(3, 3\)"):
        nn.cross_entropy(logits, np.eye(3))
    with pytest.raises(nn.TargetError, match="sum to 1"):
        nn.cross_entropy(logits, np.ones((3, 4)) * 0.5)
    with pytest.raises(TypeError, match="Tensor of logits"):
        nn.cross_entropy(cr.Value(1.0), 0)


def test_cross_entropy_accepts_one_example() -> None:
    """1-d logits with a class index (or a probability row) are one example."""
    z = np.array([2.0, -1.0, 0.5])
    expected = -(z[0] - np.log(np.exp(z).sum()))
    assert nn.cross_entropy(z, 0).item() == pytest.approx(expected, rel=1e-14)
    assert nn.cross_entropy(z, [1.0, 0.0, 0.0]).item() == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="empty"):
        nn.cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))


def _loss_diagram(loss_function: Any) -> Any:
    """The diagram of a loss on a neuron-level 2→1 sigmoid network at one example."""
    net = nn.NeuronMLP([2, 1], output_activation="sigmoid", seed=0)
    (z,) = net([30.0, 1.0])
    return cr.draw(loss_function(z, 1))


def test_log_loss_diagram_has_one_loss_node_with_the_handout_partial() -> None:
    """log_loss on a NeuronMLP draws one loss node, edge −y/z + (1−y)/(1−z), no clamps."""
    diagram = _loss_diagram(nn.log_loss)
    loss_nodes = [node for node in diagram.nodes if "log(1 − x2[1])" in node.label]
    assert len(loss_nodes) == 1
    into_loss = {
        edge.label.split("\n")[0] for edge in diagram.edges if edge.target == loss_nodes[0].id
    }
    assert "−y/x2[1] + (1 − y)/(1 − x2[1])" in into_loss
    text = " ".join([*(n.label for n in diagram.nodes), *(e.label for e in diagram.edges)])
    assert "maximum" not in text and "step" not in text and "e-44" not in text


def test_square_loss_diagram_has_one_loss_node_with_the_handout_partial() -> None:
    """square_loss on a NeuronMLP draws one node (y − z)² whose edge from z is −2(y − z)."""
    diagram = _loss_diagram(nn.square_loss)
    loss_nodes = [node for node in diagram.nodes if "(y − x2[1])²" in node.label]
    assert len(loss_nodes) == 1
    into_loss = {
        edge.label.split("\n")[0] for edge in diagram.edges if edge.target == loss_nodes[0].id
    }
    assert "−2·(y − x2[1])" in into_loss


def test_log_loss_value_gradient_is_the_handout_partial() -> None:
    """∂L/∂z of the Value log loss equals −y/z + (1−y)/(1−z) for y = 0 and 1."""
    for y in (0.0, 1.0):
        z = cr.Value(0.3)
        nn.log_loss(z, y).backward()
        assert z.grad == pytest.approx(-y / 0.3 + (1 - y) / 0.7, rel=1e-15)


def test_log_loss_tensor_stays_finite_at_saturated_probabilities() -> None:
    """At p = 0, 1 and 1e-50 against the wrong label the loss is 100 and the gradient finite."""
    p = cr.tensor([0.0, 1.0, 1e-50, 0.5], requires_grad=True)
    loss = nn.log_loss(p, [1, 0, 1, 1], reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.data, [100.0, 100.0, 100.0, np.log(2.0)], rtol=1e-15)
    assert np.isfinite(p.grad).all()
    assert p.grad[3] == pytest.approx(-2.0, rel=1e-15)
    # Where the clamp is inactive the row is the handout's formula, bit for bit.
    q = np.array([0.1, 0.7, 0.999])
    y = np.array([1.0, 0.0, 1.0])
    expected = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    np.testing.assert_array_equal(nn.log_loss(cr.tensor(q), y, reduction="none").data, expected)

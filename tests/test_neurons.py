"""Tests for the neuron-level MLP and the handout weight names it uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.experiments.titanic import HANDOUT_WEIGHTS
from chainrule.nn.handout_names import parse_weight_name, weight_slot

# The assignment's exercise 2 weights (x_1 = age, x_2 = male, x_3 = 1, the bias unit).
TITANIC_WEIGHTS = HANDOUT_WEIGHTS


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- weight names -----------------------------------------------------------------------------


def test_parse_weight_name_reads_every_accepted_form() -> None:
    """'w1[2,3]', 'w_{2,3}^{(1)}', 'w^{(1)}_{2,3}' and '$...$' all mean k=1, i=2, j=3."""
    for name in ("w1[2,3]", " w1[ 2 , 3 ] ", "w_{2,3}^{(1)}", "w_{2,3}^(1)", "w^{(1)}_{2,3}"):
        assert parse_weight_name(name) == (1, 2, 3), name
    assert parse_weight_name("$w_{1,2}^{(12)}$") == (12, 1, 2)


def test_parse_weight_name_rejects_malformed_names() -> None:
    """Anything else fails with the forms to use."""
    for name in ("w1[1]", "x1[1,2]", "w1[1,2,3]", "w_{1,2}", ""):
        with pytest.raises(nn.WeightNameError, match="write w"):
            parse_weight_name(name)
    with pytest.raises(nn.WeightNameError, match="string"):
        parse_weight_name(3)  # type: ignore[arg-type]


def test_weight_slot_maps_names_to_state_dict_entries() -> None:
    """w_{i,j}^(k) is layers.{k-1}.weight[i-1, j-1]; j = n_k + 1 is layers.{k-1}.bias[i-1]."""
    sizes = [2, 2, 1]
    assert weight_slot("w1[2,1]", sizes, bias=True) == ("layers.0.weight", (1, 0))
    assert weight_slot("w1[2,3]", sizes, bias=True) == ("layers.0.bias", (1,))
    assert weight_slot("w2[1,3]", sizes, bias=True) == ("layers.1.bias", (0,))
    for bad in ("w0[1,1]", "w3[1,1]", "w1[3,1]", "w1[1,4]", "w1[0,1]"):
        with pytest.raises(nn.WeightNameError, match="valid names"):
            weight_slot(bad, sizes, bias=True)


def test_weight_name_errors_summarise_large_networks() -> None:
    """For a large network the error gives index ranges instead of thousands of names."""
    with pytest.raises(nn.WeightNameError, match=r"w1\[1..30,1..11\]; w2\[1..2,1..31\]"):
        weight_slot("w3[1,1]", [10, 30, 2], bias=True)


# --- construction and forward -----------------------------------------------------------------


def test_neuron_mlp_has_one_value_per_weight_labelled_by_handout_name() -> None:
    """The Titanic network has 9 weights, each a Value labelled with its handout name."""
    network = nn.NeuronMLP([2, 2, 1], output_activation="sigmoid", seed=0)
    named = network.named_parameters()
    assert [name for name, _ in named] == list(TITANIC_WEIGHTS)
    assert all(isinstance(w, cr.Value) and w.label == name for name, w in named)
    assert network.weight_names() == list(TITANIC_WEIGHTS)


def test_neuron_mlp_draws_units_as_the_handout_does() -> None:
    """Forward builds s_i^(k) and x_i^(k) nodes and a bias unit fixed at 1."""
    network = nn.NeuronMLP([2, 2, 1], output_activation="sigmoid", seed=0)
    network.set_weights(TITANIC_WEIGHTS)
    inputs, hidden, (output,) = network.layer_outputs([30.0, 1.0])
    assert [unit.label for unit in inputs] == ["x1[1]", "x1[2]"]
    assert [unit.label for unit in hidden] == ["x2[1]", "x2[2]"]
    assert output.label == "x3[1]"
    summation = output.parents[0]
    assert output.op is not None and output.op.name == "sigmoid"
    assert summation.label == "s3[1]"
    assert summation.op is not None and summation.op.name == "add"
    labels = _labels_in_graph(output)
    assert {"x1[3]", "x2[3]", "w1[1,3]", "w2[1,3]", "s2[1]", "s2[2]"} <= labels
    bias_units = [n for n in _nodes(output) if n.label in ("x1[3]", "x2[3]")]
    assert all(unit.data == 1.0 for unit in bias_units)


def _nodes(root: cr.Value) -> list[cr.Value]:
    seen: dict[int, cr.Value] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.parents)  # type: ignore[arg-type]
    return list(seen.values())


def _labels_in_graph(root: cr.Value) -> set[str]:
    return {n.label for n in _nodes(root) if n.label}


def test_neuron_mlp_set_weights_reproduces_assignment_exercise_2() -> None:
    """The hidden unit is σ(−5) = 0.0067 for a male and σ(5) = 0.9933 for a female."""
    network = nn.NeuronMLP([2, 2, 1], output_activation="sigmoid", seed=0)
    network.set_weights(TITANIC_WEIGHTS)
    assert network.get_weights() == TITANIC_WEIGHTS
    male = network.layer_outputs([30.0, 1.0])[1][0].data
    female = network.layer_outputs([30.0, 0.0])[1][0].data
    assert round(male, 4) == 0.0067
    assert round(female, 4) == 0.9933
    assert male == pytest.approx(_sigmoid(-5.0), rel=1e-15)
    young_male = network.layer_outputs([1.0, 1.0])[1][1].data
    assert round(young_male, 3) == 0.982
    (survival,) = network.forward([30.0, 0.0])
    assert round(survival.data, 2) == 0.73


def test_neuron_mlp_checks_the_number_of_inputs() -> None:
    """An example with the wrong number of inputs raises a ShapeError."""
    network = nn.NeuronMLP([3, 2, 1], seed=0)
    with pytest.raises(cr.ShapeError, match=r"3 input\(s\), got 2"):
        network.forward([1.0, 2.0])
    with pytest.raises(TypeError, match="sequence"):
        network.forward(cr.Value(1.0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="real number"):
        network.forward([1.0, "a", 2.0])  # type: ignore[list-item]


def test_neuron_mlp_same_seed_gives_the_mlp_weights() -> None:
    """NeuronMLP and MLP built with one seed start from the same weights."""
    neuron = nn.NeuronMLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], seed=9)
    tensor = nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], seed=9)
    for key, value in tensor.state_dict().items():
        np.testing.assert_array_equal(neuron.state_dict()[key], value)


# --- the two levels agree ---------------------------------------------------------------------


def _compare_levels(
    tensor_model: nn.MLP, neuron_model: nn.NeuronMLP, x: np.ndarray, y: np.ndarray, loss: str
) -> None:
    """Outputs and summed-loss gradients of the two networks agree to rounding."""
    loss_function = nn.get_loss(loss, reduction="sum")
    tensor_out = tensor_model(x)
    loss_function(tensor_out, y).backward()
    total = None
    neuron_outputs = []
    for row, target in zip(x, y):
        outputs = neuron_model(list(row))
        neuron_outputs.append([unit.data for unit in outputs])
        term = loss_function(outputs, list(target))
        total = term if total is None else total + term
    assert total is not None
    total.backward()
    np.testing.assert_allclose(neuron_outputs, tensor_out.data, rtol=1e-13, atol=1e-15)
    neuron_grads = neuron_model.gradient_dict()
    for name, parameter in tensor_model.named_parameters():
        np.testing.assert_allclose(
            neuron_grads[name], parameter.grad, rtol=1e-12, atol=1e-15, err_msg=name
        )
    tensor_by_name = tensor_model.get_gradients()
    for name, value in neuron_model.get_gradients().items():
        assert value == pytest.approx(tensor_by_name[name], rel=1e-12, abs=1e-15)


def test_neuron_and_tensor_quiz_networks_agree_in_outputs_and_gradients() -> None:
    """4→2→3→1 with g = tanh, h = sigmoid: same outputs and gradients at both levels."""
    tensor_model = nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], seed=4)
    neuron_model = nn.NeuronMLP.from_mlp(tensor_model)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 1))
    _compare_levels(tensor_model, neuron_model, x, y, "square")


def test_neuron_and_tensor_titanic_networks_agree_in_outputs_and_gradients() -> None:
    """The Titanic 2→2→1 sigmoid network agrees at both levels under the log loss."""
    tensor_model = nn.MLP([2, 2, 1], output_activation="sigmoid", seed=0)
    tensor_model.set_weights(TITANIC_WEIGHTS)
    neuron_model = nn.NeuronMLP.from_mlp(tensor_model)
    x = np.array([[30.0, 1.0], [30.0, 0.0], [1.0, 1.0], [4.0, 1.0], [10.0, 0.0]])
    y = np.array([[0.0], [1.0], [1.0], [1.0], [0.0]])
    _compare_levels(tensor_model, neuron_model, x, y, "log_loss")


def test_neuron_and_tensor_softmax_networks_agree() -> None:
    """A softmax output (over the whole layer) and relu hidden units agree at both levels."""
    tensor_model = nn.MLP([3, 4, 3], activation="relu", output_activation="softmax", seed=2)
    neuron_model = nn.NeuronMLP.from_mlp(tensor_model)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    y = np.eye(3)[[0, 2, 1, 0]]
    _compare_levels(tensor_model, neuron_model, x, y, "square")
    outputs = neuron_model([0.3, -0.2, 1.0])
    assert sum(u.data for u in outputs) == pytest.approx(1.0, rel=1e-15)


def test_neuron_mlp_gradients_match_finite_differences() -> None:
    """Every weight's gradient equals central differences of the loss in that weight."""
    network = nn.NeuronMLP([3, 2, 2], activation="tanh", output_activation="sigmoid", seed=5)
    x, y = [0.5, -1.2, 2.0], [1.0, 0.0]

    def loss_value() -> cr.Value:
        return nn.log_loss(network(x), y, reduction="sum")

    network.zero_grad()
    loss_value().backward()
    gradients = network.get_gradients()
    eps = 1e-6
    for name, value in network.get_weights().items():
        network.set_weights({name: value + eps})
        plus = loss_value().data
        network.set_weights({name: value - eps})
        minus = loss_value().data
        network.set_weights({name: value})
        assert gradients[name] == pytest.approx((plus - minus) / (2 * eps), abs=1e-8), name


def test_neuron_mlp_gradients_follow_the_quiz_closed_forms() -> None:
    """Quiz ex. 2: ∂C/∂W^(3)_j = ∂C/∂ŷ·h(Z^(3)_j), ∂C/∂b^(3) = ∂C/∂ŷ, ∂C/∂W^(1)_ij = δ_i·x_j."""
    network = nn.NeuronMLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], seed=6)
    x, y = [0.2, -0.4, 1.1, 0.7], 0.3
    _, v2, v3, (y_hat,) = network.layer_outputs(x)
    nn.square_loss(y_hat, y).backward()
    g = network.get_gradients()
    weights = network.get_weights()
    dc_dyhat = -2.0 * (y - y_hat.data)
    for j in range(3):
        assert g[f"w3[1,{j + 1}]"] == pytest.approx(dc_dyhat * v3[j].data, rel=1e-13)
    assert g["w3[1,4]"] == pytest.approx(dc_dyhat, rel=1e-13)
    # ∂C/∂Z^(3)_k = ∂C/∂ŷ · W^(3)_k · h'(Z^(3)_k), then back through W^(2) and g' = 1 − tanh².
    dc_dz3 = [
        dc_dyhat * weights[f"w3[1,{k + 1}]"] * v3[k].data * (1 - v3[k].data) for k in range(3)
    ]
    for i in range(2):
        dc_dv2 = sum(dc_dz3[k] * weights[f"w2[{k + 1},{i + 1}]"] for k in range(3))
        dc_dz2 = dc_dv2 * (1 - v2[i].data ** 2)
        for j in range(4):
            assert g[f"w1[{i + 1},{j + 1}]"] == pytest.approx(dc_dz2 * x[j], rel=1e-12)
        assert g[f"w1[{i + 1},5]"] == pytest.approx(dc_dz2, rel=1e-12)


# --- state dicts and conversion ---------------------------------------------------------------


def test_state_dict_round_trips_between_mlp_and_neuron_mlp() -> None:
    """MLP → NeuronMLP → MLP through state dicts is bit-exact, with and without bias."""
    for bias in (True, False):
        mlp = nn.MLP([3, 4, 2], activation="tanh", bias=bias, seed=8)
        neuron = nn.NeuronMLP([3, 4, 2], activation="tanh", bias=bias, seed=99)
        neuron.load_state_dict(mlp.state_dict())
        back = nn.MLP([3, 4, 2], activation="tanh", bias=bias, seed=100)
        back.load_state_dict(neuron.state_dict())
        for key, value in mlp.state_dict().items():
            assert np.array_equal(neuron.state_dict()[key], value)
            assert np.array_equal(back.state_dict()[key], value)
        assert set(neuron.state_dict()) == set(mlp.state_dict())


def test_from_mlp_and_to_mlp_keep_architecture_and_weights() -> None:
    """from_mlp and to_mlp carry sizes, activations, bias and every weight."""
    mlp = nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], output_activation="sigmoid", seed=1)
    neuron = nn.NeuronMLP.from_mlp(mlp)
    expected = {key: value for key, value in mlp.config().items() if key != "dtype"}
    assert neuron.config() == {**expected, "type": "NeuronMLP"}
    back = neuron.to_mlp()
    assert back.config() == mlp.config()
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(back(x).data, mlp(x).data)
    assert neuron.get_weights() == mlp.get_weights()


def test_neuron_load_state_dict_checks_keys_and_shapes() -> None:
    """A state dict from a different architecture is refused with the key and shapes."""
    neuron = nn.NeuronMLP([2, 2, 1], seed=0)
    with pytest.raises(nn.StateDictError, match=r"'layers.0.weight' has shape \(3, 2\).*\(2, 2\)"):
        neuron.load_state_dict(nn.MLP([2, 3, 1], seed=0).state_dict())
    with pytest.raises(nn.StateDictError, match="unexpected keys"):
        neuron.load_state_dict(nn.MLP([2, 2, 2, 1], seed=0).state_dict())


def test_neuron_mlp_trains_with_sgd_like_the_tensor_mlp() -> None:
    """Ten SGD steps give the same weights at the neuron level and the tensor level."""
    mlp = nn.MLP([2, 3, 1], activation="tanh", output_activation="sigmoid", seed=3)
    neuron = nn.NeuronMLP.from_mlp(mlp)
    x = np.array([[0.5, -0.2], [1.0, 1.5], [-0.3, 0.8]])
    y = np.array([[1.0], [0.0], [1.0]])
    tensor_optimizer = cr.optim.SGD(mlp.parameters(), lr=0.5)
    neuron_optimizer = cr.optim.SGD(neuron.parameters(), lr=0.5)
    for _ in range(10):
        tensor_optimizer.zero_grad()
        nn.log_loss(mlp(x), y, reduction="sum").backward()
        tensor_optimizer.step()
        neuron_optimizer.zero_grad()
        total = nn.log_loss(neuron(x[0]), y[0], reduction="sum")
        for row, target in zip(x[1:], y[1:]):
            total = total + nn.log_loss(neuron(row), target, reduction="sum")
        total.backward()
        neuron_optimizer.step()
    for key, value in mlp.state_dict().items():
        np.testing.assert_allclose(neuron.state_dict()[key], value, rtol=1e-12, atol=1e-14)


def test_neuron_mlp_repr_and_zero_grad() -> None:
    """repr names the architecture; zero_grad resets every weight's grad to 0."""
    network = nn.NeuronMLP([2, 2, 1], output_activation="sigmoid", seed=0)
    assert repr(network) == (
        "NeuronMLP(sizes=[2, 2, 1], activation='sigmoid', output_activation='sigmoid', bias=True)"
    )
    network([1.0, 2.0])[0].backward()
    assert any(w.grad != 0.0 for w in network.parameters())
    network.zero_grad()
    assert all(w.grad == 0.0 for w in network.parameters())

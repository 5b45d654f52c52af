"""Tests for chainrule.nn modules: Module, Linear, Sequential, activations, MLP."""

from __future__ import annotations

import doctest
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.experiments.titanic import HANDOUT_WEIGHTS

# The assignment's exercise 2 weights (x_1 = age, x_2 = male, x_3 = 1, the bias unit).
TITANIC_WEIGHTS = HANDOUT_WEIGHTS


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --- Linear -----------------------------------------------------------------------------------


def test_linear_forward_is_x_times_weight_transposed_plus_bias() -> None:
    """Linear computes x @ W.T + b with W of shape (out, in)."""
    layer = nn.Linear(3, 2, seed=0)
    x = np.random.default_rng(1).normal(size=(5, 3))
    out = layer(x)
    assert layer.weight.shape == (2, 3)
    assert layer.bias is not None and layer.bias.shape == (2,)
    np.testing.assert_allclose(out.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-15)


def test_linear_backward_gives_closed_form_gradients() -> None:
    """∂(Σ G∘out)/∂W = Gᵀx and ∂/∂b = Σ_rows G for a Linear layer."""
    layer = nn.Linear(3, 2, seed=0)
    rng = np.random.default_rng(2)
    x, upstream = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    (layer(x) * upstream).sum().backward()
    np.testing.assert_allclose(layer.weight.grad, upstream.T @ x, rtol=1e-13)
    assert layer.bias is not None
    np.testing.assert_allclose(layer.bias.grad, upstream.sum(axis=0), rtol=1e-13)


def test_linear_initialisation_is_uniform_in_bound_and_seeded() -> None:
    """Weights lie in ±1/√fan_in; the same seed repeats them bit for bit."""
    first, second = nn.Linear(50, 40, seed=7), nn.Linear(50, 40, seed=7)
    bound = 1 / math.sqrt(50)
    assert np.abs(first.weight.data).max() <= bound
    assert np.abs(first.weight.data).max() > 0.9 * bound  # spread over the whole range
    assert np.array_equal(first.weight.data, second.weight.data)
    assert first.bias is not None and second.bias is not None
    assert np.array_equal(first.bias.data, second.bias.data)
    assert not np.array_equal(first.weight.data, nn.Linear(50, 40, seed=8).weight.data)


def test_linear_without_bias_and_float32() -> None:
    """bias=False leaves out the bias; dtype float32 gives float32 weights and outputs."""
    layer = nn.Linear(2, 3, bias=False, dtype="float32", seed=0)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    out = layer(np.ones((1, 2)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, layer.weight.data.sum(axis=1)[None, :], rtol=1e-6)


def test_linear_rejects_bad_arguments_and_widths() -> None:
    """Non-positive sizes, bad dtypes and wrong input widths raise clear errors."""
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 2)
    with pytest.raises(ValueError, match="dtype"):
        nn.Linear(2, 2, dtype="int32")
    with pytest.raises(cr.ShapeError, match=r"2 feature\(s\).*\(4, 3\)"):
        nn.Linear(2, 2)(np.ones((4, 3)))


# --- activations ------------------------------------------------------------------------------


def test_activations_work_on_tensors_and_values_alike() -> None:
    """Every named elementwise activation gives the same number on a Value and a Tensor."""
    for name, function in nn.ACTIVATIONS.items():
        if name == "softmax":
            continue
        for point in (-1.3, 0.4):
            on_value = function(cr.Value(point))
            on_tensor = function(cr.tensor([point]))
            assert isinstance(on_value, cr.Value) and isinstance(on_tensor, cr.Tensor)
            assert float(on_value) == pytest.approx(float(on_tensor.data[0]), rel=1e-15)


def test_get_activation_unknown_name_lists_known_names() -> None:
    """An unknown activation name fails with the list of known ones."""
    with pytest.raises(ValueError, match=r"known activations: .*relu.*sigmoid.*tanh"):
        nn.get_activation("swish")
    with pytest.raises(ValueError, match="known activations"):
        nn.MLP([2, 3, 1], activation="sigmod")
    with pytest.raises(ValueError, match="known activations"):
        nn.MLP([2, 1], output_activation="softmaxx")


def test_get_activation_passes_callables_through() -> None:
    """A callable is returned unchanged and used by MLP.forward."""

    def cube(x: cr.Tensor) -> cr.Tensor:
        return x * x * x

    assert nn.get_activation(cube) is cube
    model = nn.MLP([2, 2, 1], activation=cube, seed=0)
    x = np.array([[0.5, -1.0]])
    w1, b1 = model.layers[0].weight.data, model.layers[0].bias.data  # type: ignore[union-attr]
    w2, b2 = model.layers[1].weight.data, model.layers[1].bias.data  # type: ignore[union-attr]
    expected = ((x @ w1.T + b1) ** 3) @ w2.T + b2
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-14)


def test_activation_modules_apply_their_function() -> None:
    """Sigmoid, Tanh, ReLU, Identity and Softmax modules compute their functions."""
    x = np.array([[-2.0, 0.5, 3.0]])
    t = cr.tensor(x)
    np.testing.assert_allclose(nn.Sigmoid()(t).data, _sigmoid(x), rtol=1e-14)
    np.testing.assert_allclose(nn.Tanh()(t).data, np.tanh(x), rtol=1e-14)
    np.testing.assert_allclose(nn.ReLU()(t).data, np.maximum(x, 0))
    assert nn.Identity()(t) is t
    np.testing.assert_allclose(nn.Softmax()(t).data, np.exp(x) / np.exp(x).sum(), rtol=1e-14)
    assert repr(nn.Tanh()) == "Tanh()"


# --- MLP --------------------------------------------------------------------------------------


def _numpy_forward(
    model: nn.MLP,
    x: np.ndarray,
    hidden: list[Callable[[np.ndarray], np.ndarray]],
    output: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    h = x
    for k, layer in enumerate(model.layers):
        assert layer.bias is not None
        h = h @ layer.weight.data.T + layer.bias.data
        h = hidden[k](h) if k < len(hidden) else output(h)
    return h


def test_mlp_forward_matches_numpy_for_the_quiz_network() -> None:
    """A 4→2→3→1 MLP with g = tanh, h = sigmoid matches a numpy forward pass."""
    model = nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], seed=3)
    x = np.random.default_rng(0).normal(size=(6, 4))
    expected = _numpy_forward(model, x, [np.tanh, _sigmoid], lambda h: h)
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-14)
    assert model.activations == ["tanh", "sigmoid", "identity"]
    assert [layer.weight.shape for layer in model.layers] == [(2, 4), (3, 2), (1, 3)]


def test_mlp_forward_accepts_lists_arrays_tensors_and_one_example() -> None:
    """Inputs may be a list of rows, an array, a Tensor, or a single example."""
    model = nn.MLP([2, 3, 1], output_activation="sigmoid", seed=0)
    rows = [[0.1, 0.2], [0.3, -0.4]]
    from_list = model(rows).data
    np.testing.assert_array_equal(from_list, model(np.array(rows)).data)
    np.testing.assert_array_equal(from_list, model(cr.tensor(rows)).data)
    single = model([0.1, 0.2])
    assert single.shape == (1, 1)
    assert single.data[0, 0] == from_list[0, 0]


def test_mlp_forward_names_the_expected_width_on_bad_input() -> None:
    """A batch of the wrong width raises a ShapeError naming both widths."""
    model = nn.MLP([3, 2, 1], seed=0)
    with pytest.raises(cr.ShapeError, match=r"3 feature\(s\).*\(5, 2\)"):
        model(np.zeros((5, 2)))
    with pytest.raises(TypeError, match="numbers"):
        model([["a", "b", "c"]])


def test_mlp_forward_logits_is_the_output_before_its_activation() -> None:
    """forward = output_activation(forward_logits) for sigmoid and softmax outputs."""
    x = np.random.default_rng(4).normal(size=(5, 3))
    binary = nn.MLP([3, 4, 1], output_activation="sigmoid", seed=1)
    np.testing.assert_allclose(binary(x).data, _sigmoid(binary.forward_logits(x).data), rtol=1e-14)
    multi = nn.MLP([3, 4, 3], activation="relu", output_activation="softmax", seed=1)
    probabilities = multi(x).data
    logits = multi.forward_logits(x).data
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-14)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-14)


def test_mlp_activation_list_needs_one_entry_per_hidden_layer() -> None:
    """A list of activations of the wrong length is refused with both counts."""
    with pytest.raises(ValueError, match=r"2 hidden layer\(s\), the list has 1"):
        nn.MLP([4, 2, 3, 1], activation=["tanh"])


def test_mlp_rejects_bad_sizes() -> None:
    """sizes must list at least two positive integer widths."""
    with pytest.raises(ValueError, match="at least the input and the output"):
        nn.MLP([3])
    with pytest.raises(ValueError, match=r"sizes\[1\]"):
        nn.MLP([3, 0, 1])
    with pytest.raises(ValueError, match="list of layer widths"):
        nn.MLP(3)  # type: ignore[arg-type]


def test_mlp_same_seed_gives_bit_identical_weights() -> None:
    """Two MLPs with one seed hold identical weights; another seed differs."""
    a = nn.MLP([3, 5, 2], seed=11).state_dict()
    b = nn.MLP([3, 5, 2], seed=11).state_dict()
    c = nn.MLP([3, 5, 2], seed=12).state_dict()
    assert all(np.array_equal(a[key], b[key]) for key in a)
    assert not np.array_equal(a["layers.0.weight"], c["layers.0.weight"])


def test_mlp_float32_runs_in_float32() -> None:
    """dtype='float32' keeps weights, outputs and gradients in float32."""
    model = nn.MLP([2, 3, 1], dtype="float32", seed=0)
    out = model(np.ones((4, 2)))  # float64 input is converted
    assert out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_mlp_state_dict_has_the_contract_keys_and_shapes() -> None:
    """state_dict keys are layers.{k}.weight (n_{k+2}, n_{k+1}) and layers.{k}.bias."""
    model = nn.MLP([4, 2, 3, 1], seed=0)
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    assert shapes == {
        "layers.0.weight": (2, 4),
        "layers.0.bias": (2,),
        "layers.1.weight": (3, 2),
        "layers.1.bias": (3,),
        "layers.2.weight": (1, 3),
        "layers.2.bias": (1,),
    }
    without_bias = nn.MLP([4, 2, 1], bias=False, seed=0)
    assert list(without_bias.state_dict()) == ["layers.0.weight", "layers.1.weight"]


def test_state_dict_is_a_copy() -> None:
    """Changing a state dict leaves the module's weights alone."""
    model = nn.MLP([2, 2, 1], seed=0)
    state = model.state_dict()
    before = model.layers[0].weight.data.copy()
    state["layers.0.weight"][...] = 99.0
    np.testing.assert_array_equal(model.layers[0].weight.data, before)


def test_load_state_dict_round_trips_in_place() -> None:
    """Loading copies values into the existing parameters, so optimizers keep them."""
    source, target = nn.MLP([3, 4, 2], seed=1), nn.MLP([3, 4, 2], seed=2)
    weight = target.layers[0].weight
    target.load_state_dict(source.state_dict())
    assert target.layers[0].weight is weight
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value)


def test_load_state_dict_refuses_bad_keys_and_shapes_and_changes_nothing() -> None:
    """Missing, unknown or misshapen entries raise an error naming the key and shapes."""
    model = nn.MLP([3, 4, 2], seed=1)
    before = model.state_dict()
    state = nn.MLP([3, 4, 2], seed=5).state_dict()
    del state["layers.1.bias"]
    with pytest.raises(nn.StateDictError, match=r"missing keys \['layers.1.bias'\]"):
        model.load_state_dict(state)
    state = nn.MLP([3, 4, 2], seed=5).state_dict()
    state["extra"] = np.zeros(2)
    with pytest.raises(nn.StateDictError, match=r"unexpected keys \['extra'\]"):
        model.load_state_dict(state)
    state = nn.MLP([3, 4, 2], seed=5).state_dict()
    state["layers.1.weight"] = np.zeros((4, 2))
    with pytest.raises(nn.StateDictError, match=r"'layers.1.weight' has shape \(4, 2\).*\(2, 4\)"):
        model.load_state_dict(state)
    with pytest.raises(TypeError, match="numbers"):
        model.load_state_dict({**before, "layers.0.bias": np.array(["a"] * 4)})
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_non_strict_loads_a_subset() -> None:
    """strict=False loads the keys given and keeps the others."""
    model = nn.MLP([2, 2, 1], seed=0)
    kept = model.layers[1].weight.data.copy()
    model.load_state_dict({"layers.0.bias": np.array([1.0, 2.0])}, strict=False)
    np.testing.assert_array_equal(model.layers[0].bias.data, [1.0, 2.0])  # type: ignore[union-attr]
    np.testing.assert_array_equal(model.layers[1].weight.data, kept)


def test_named_parameters_and_zero_grad() -> None:
    """Parameters come in layer order; zero_grad clears every gradient."""
    model = nn.MLP([2, 3, 1], seed=0)
    names = [name for name, _ in model.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert model.parameters()[0] is model.layers[0].weight
    model(np.ones((2, 2))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_mlp_layer_outputs_lists_every_layer() -> None:
    """layer_outputs gives x^(1), ..., x^(m), the last equal to forward."""
    model = nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], seed=0)
    x = np.random.default_rng(0).normal(size=(3, 4))
    outputs = model.layer_outputs(x)
    assert [o.shape for o in outputs] == [(3, 4), (3, 2), (3, 3), (3, 1)]
    np.testing.assert_array_equal(outputs[-1].data, model(x).data)
    assert np.all(np.abs(outputs[1].data) < 1)  # tanh units


# --- Sequential -------------------------------------------------------------------------------


def test_sequential_chains_modules_and_names_parameters_by_position() -> None:
    """Sequential feeds each step's output to the next; names are '0.weight' etc."""
    model = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Tanh(), nn.Linear(3, 1, seed=1))
    x = np.array([[0.2, -0.7]])
    first, last = model[0], model[2]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    assert first.bias is not None and last.bias is not None
    hidden = np.tanh(x @ first.weight.data.T + first.bias.data)
    expected = hidden @ last.weight.data.T + last.bias.data
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-15)
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model) == 3
    with pytest.raises(TypeError, match="step 1"):
        nn.Sequential(nn.Tanh(), np.tanh)  # type: ignore[arg-type]


def test_module_repr_is_readable() -> None:
    """repr shows the architecture: arguments for layers, one line per step."""
    assert repr(nn.Linear(2, 3, seed=0)) == (
        "Linear(in_features=2, out_features=3, bias=True, dtype='float64')"
    )
    assert repr(nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"])) == (
        "MLP(sizes=[4, 2, 3, 1], activation=['tanh', 'sigmoid'], output_activation=None, "
        "bias=True, dtype='float64')"
    )
    assert repr(nn.Sequential(nn.Linear(2, 1, seed=0), nn.Sigmoid())) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=1, bias=True, dtype='float64')\n"
        "  (1): Sigmoid()\n"
        ")"
    )


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        nn.MLP([3, 4, 2], activation="tanh", output_activation="softmax", seed=0),
        nn.MLP([4, 2, 3, 1], activation=["tanh", "sigmoid"], bias=False, dtype="float32"),
        nn.NeuronMLP([2, 2, 1], output_activation="sigmoid", seed=0),
        nn.Sequential(nn.Linear(2, 3, seed=0), nn.ReLU(), nn.Linear(3, 1, seed=0)),
        nn.Linear(5, 2, bias=False, seed=0),
        nn.Softmax(),
        nn.BCEWithLogitsLoss(reduction="sum"),
        nn.CrossEntropyLoss(),
    ],
)
def test_config_is_json_and_rebuilds_the_same_architecture(module: nn.Module) -> None:
    """from_config(json(config)) rebuilds a module with the same config and shapes."""
    config = json.loads(json.dumps(module.config()))
    rebuilt = nn.from_config(config, seed=3)
    assert type(rebuilt) is type(module)
    assert rebuilt.config() == module.config()
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in module.state_dict().items()
    }


def test_from_config_seed_reproduces_weights() -> None:
    """from_config with a seed gives the weights MLP would give with that seed."""
    config = nn.MLP([3, 4, 1]).config()
    rebuilt = nn.from_config(config, seed=5)
    direct = nn.MLP([3, 4, 1], seed=5)
    for key, value in direct.state_dict().items():
        np.testing.assert_array_equal(rebuilt.state_dict()[key], value)


def test_from_config_refuses_unknown_types_and_keys() -> None:
    """Unknown types or keys raise ConfigError naming what is known."""
    with pytest.raises(nn.ConfigError, match=r"known types: .*MLP"):
        nn.from_config({"type": "os.system"})
    with pytest.raises(nn.ConfigError, match=r"unknown keys \['depth'\]"):
        nn.from_config({"type": "MLP", "sizes": [2, 1], "depth": 3})
    with pytest.raises(nn.ConfigError, match="known activations"):
        nn.from_config({"type": "MLP", "sizes": [2, 2, 1], "activation": "nope"})
    with pytest.raises(nn.ConfigError, match="is a dict"):
        nn.from_config([("type", "MLP")])  # type: ignore[arg-type]


def test_config_refuses_an_unnamed_callable_activation() -> None:
    """A network with a custom callable activation cannot be described by a config."""
    model = nn.MLP([2, 2, 1], activation=lambda x: x * 2.0, seed=0)
    with pytest.raises(nn.ConfigError, match="callable"):
        model.config()
    named = nn.MLP([2, 2, 1], activation=cr.tanh, seed=0)
    assert named.config()["activation"] == "tanh"


# --- handout weights --------------------------------------------------------------------------


def test_mlp_weight_names_follow_the_handout_order() -> None:
    """Names run layer by layer, unit by unit, with the bias unit j = n_k + 1 last."""
    model = nn.MLP([2, 2, 1], seed=0)
    assert model.weight_names() == list(TITANIC_WEIGHTS)
    assert nn.MLP([2, 2, 1], bias=False).weight_names() == [
        "w1[1,1]",
        "w1[1,2]",
        "w1[2,1]",
        "w1[2,2]",
        "w2[1,1]",
        "w2[1,2]",
    ]


def test_mlp_set_weights_reproduces_assignment_exercise_2() -> None:
    """With the exercise 2 weights the hidden and output units take the handout's values."""
    model = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
    model.set_weights(TITANIC_WEIGHTS)
    assert model.get_weights() == TITANIC_WEIGHTS
    # (a) x_1^(2) encodes "female": σ(−5) = 0.0067 for a male, σ(5) = 0.9933 for a female.
    _, hidden, _ = model.layer_outputs([[30.0, 1.0], [30.0, 0.0]])
    assert round(float(hidden.data[0, 0]), 4) == 0.0067
    assert round(float(hidden.data[1, 0]), 4) == 0.9933
    # (b) x_2^(2) encodes "young male": σ(4) = 0.982 at age 1, σ(1) = 0.731 at age 4.
    _, hidden, _ = model.layer_outputs([[1.0, 1.0], [4.0, 1.0], [10.0, 1.0]])
    assert [round(float(v), 3) for v in hidden.data[:, 1]] == [0.982, 0.731, 0.007]
    # (c) survival ≈ σ(1) = 0.73 for a female or a young male, low for an older male.
    survival = model([[30.0, 0.0], [1.0, 1.0], [30.0, 1.0]]).data[:, 0]
    assert [round(float(v), 2) for v in survival[:2]] == [0.73, 0.73]
    assert survival[2] < 0.3


def test_set_weights_accepts_tex_names_and_sets_the_right_entry() -> None:
    """'w_{i,j}^{(k)}' names the same weight as 'wk[i,j]': weight[i-1, j-1] of layer k."""
    model = nn.MLP([3, 2, 1], seed=0)
    model.set_weights({"w_{2,3}^{(1)}": 4.5, "w^{(2)}_{1,3}": -2.0, "w1[1,4]": 0.25})
    assert model.layers[0].weight.data[1, 2] == 4.5
    assert model.layers[1].bias.data[0] == -2.0  # type: ignore[union-attr]
    assert model.layers[0].bias.data[0] == 0.25  # type: ignore[union-attr]


def test_set_weights_unknown_name_lists_valid_names_and_changes_nothing() -> None:
    """A name outside the network fails with the valid names; earlier entries are not set."""
    model = nn.MLP([2, 2, 1], seed=0)
    before = model.get_weights()
    with pytest.raises(nn.WeightNameError, match=r"valid names: w1\[1,1\], .*w2\[1,3\]"):
        model.set_weights({"w1[1,1]": 7.0, "w2[2,1]": 1.0})
    with pytest.raises(ValueError, match="cannot read weight name 'bias1'"):
        model.set_weights({"bias1": 1.0})
    with pytest.raises(ValueError, match="no bias units"):
        nn.MLP([2, 2, 1], bias=False).set_weights({"w1[1,3]": 1.0})
    with pytest.raises(ValueError, match="finite"):
        model.set_weights({"w1[1,1]": float("nan")})
    assert model.get_weights() == before


def test_mlp_get_gradients_by_handout_name() -> None:
    """get_gradients reads ∂loss/∂w from the layers by handout name."""
    model = nn.MLP([2, 2, 1], seed=0)
    assert set(model.get_gradients().values()) == {0.0}
    model(np.array([[1.0, 2.0]])).sum().backward()
    gradients = model.get_gradients()
    assert gradients["w2[1,3]"] == 1.0  # ∂out/∂(output bias) = 1
    hidden = model.layer_outputs([[1.0, 2.0]])[1].data[0]
    assert gradients["w2[1,2]"] == pytest.approx(hidden[1], rel=1e-15)
    assert gradients["w1[2,2]"] == pytest.approx(
        model.layers[1].weight.data[0, 1] * hidden[1] * (1 - hidden[1]) * 2.0, rel=1e-13
    )


# --- training end to end ----------------------------------------------------------------------


def test_xor_is_learned_by_a_2_2_1_sigmoid_mlp_with_plain_gradient_descent() -> None:
    """Full-batch gradient descent (SGD without momentum) learns XOR to 100 % accuracy."""
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    for seed in (0, 1, 2):
        model = nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=seed)
        optimizer = optim.SGD(model.parameters(), lr=5.0)
        for _ in range(1000):
            optimizer.zero_grad()
            loss = nn.log_loss(model(x), y)
            loss.backward()
            optimizer.step()
        predictions = (model(x).data > 0.5).astype(float)
        np.testing.assert_array_equal(predictions, y, err_msg=f"seed {seed}")
        assert loss.item() < 0.05


def test_loss_curve_decreases_on_a_separable_problem() -> None:
    """On two separated clusters, gradient descent lowers the loss at every step."""
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(-2.0, 0.5, size=(40, 2)), rng.normal(2.0, 0.5, size=(40, 2))])
    y = np.repeat([0.0, 1.0], 40)
    model = nn.MLP([2, 4, 1], activation="tanh", seed=0)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    curve = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = nn.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
    assert all(later < earlier for earlier, later in itertools.pairwise(curve))
    assert curve[-1] < 0.1 * curve[0]
    accuracy = np.mean((model(x).data[:, 0] > 0) == (y == 1))
    assert accuracy == 1.0


# --- docs -------------------------------------------------------------------------------------


def test_docs_nn_page_examples_run() -> None:
    """Every example in docs/nn.md runs and prints what the page says."""
    page = Path(__file__).resolve().parents[1] / "docs" / "nn.md"
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 10
    assert result.failed == 0


def test_mlp_misspelt_dtype_is_refused() -> None:
    """Issue 13 item 13: nn.MLP([2, 1], dtype="flaot32") names the dtype and what to pass."""
    for network in (nn.MLP, nn.Linear):
        args = ([2, 1],) if network is nn.MLP else (2, 1)
        with pytest.raises(cr.DTypeError, match=r"'flaot32' is not float32 or float64"):
            network(*args, dtype="flaot32")  # type: ignore[operator]
        with pytest.raises(ValueError, match=r"'int8'"):
            network(*args, dtype="int8")  # type: ignore[operator]


def test_mlp_records_its_dtype_truly() -> None:
    """The recorded dtype is the parameters' dtype, for every accepted spelling."""
    for spelling, name in (("float32", "float32"), (np.float32, "float32"), (None, "float64")):
        network = nn.MLP([2, 1], dtype=spelling)
        assert network.config()["dtype"] == name
        assert all(p.data.dtype == np.dtype(name) for p in network.parameters())
        assert nn.Linear(2, 1, dtype=spelling).config()["dtype"] == name


def _nn_imports() -> dict[str, tuple[set[str], list[str]]]:
    """Per chainrule.nn module: the nn modules it imports at top level, and in functions."""
    import ast

    folder = Path(nn.__file__).parent
    found: dict[str, tuple[set[str], list[str]]] = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                top.add(node.module or "")
        nested = [
            f"{path.name}:{node.lineno}"
            for function in ast.walk(tree)
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function)
            # chainrule.nn's own modules (from .x): outside the package is another matter
            if isinstance(node, ast.ImportFrom) and node.level == 1
        ]
        found[path.stem] = (top, nested)
    return found


def test_nn_modules_import_without_a_circle() -> None:
    """chainrule.nn's modules import each other in one direction, never inside functions."""
    imports = _nn_imports()
    assert all(not nested for _, nested in imports.values()), {
        name: nested for name, (_, nested) in imports.items() if nested
    }
    # Depth-first search for a cycle among the package's own modules.
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in imports.get(name, (set(), []))[0]:
            if other not in imports or other == "":
                continue
            assert state.get(other) != "open", f"import circle: {' -> '.join([*path, other])}"
            if other not in state:
                visit(other, [*path, other])
        state[name] = "done"

    for name in imports:
        if name != "__init__" and name not in state:
            visit(name, [name])


def test_from_config_knows_every_public_module_type() -> None:
    """MODULE_TYPES lists every public Module class of chainrule.nn, so each can be rebuilt."""
    from chainrule.nn.config import MODULE_TYPES

    public = {
        name
        for name, value in vars(nn).items()
        if isinstance(value, type) and issubclass(value, nn.Module) and value is not nn.Module
    }
    assert public == set(MODULE_TYPES)
    assert all(MODULE_TYPES[name] is getattr(nn, name) for name in public)

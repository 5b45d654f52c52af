"""The MLP as the handouts draw it: one scalar Value per neuron and per weight.

:class:`NeuronMLP` builds the same network as :class:`chainrule.nn.MLP` from
:class:`~chainrule.Value` nodes: summation units s_i^(k), activations x_i^(k), a bias
unit fixed at 1 in every layer below the output (the Titanic figure's x_3 = 1) with
its own weight, and one Value per weight w_{i,j}^(k), labelled with its name. Its
state dict has the MLP's keys and shapes, so weights move between the two losslessly.

The handouts' weight names (``"w1[1,2]"``) come from
:mod:`chainrule.nn.handout_names`, which both networks share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor
from ..value import Value
from .activations import Activation, get_activation
from .exchange import Step, layer_steps
from .handout_names import HandoutWeights, weight_name, weight_names
from .modules import (
    MLP,
    ActivationSpec,
    Module,
    Parameter,
    Seed,
    _activation_spec_config,
    _canonical_activation,
    _describe,
    _generator,
    activation_config,
    apply_activation,
    check_sizes,
    hidden_activations,
    init_layer,
)

# --- the neuron-level network ---------------------------------------------------------------


class NeuronMLP(HandoutWeights, Module):
    """An MLP built from scalar Values, one node per neuron and per weight.

    Args:
        sizes: layer widths ``[n_1, ..., n_m]``, input first.
        activation: the hidden layers' activation: a name, a callable on Values, or a
            list with one entry per hidden layer.
        output_activation: None (linear output), ``"sigmoid"``, ``"softmax"``, or any
            activation name or callable.
        bias: give every layer below the output a bias unit fixed at 1.
        seed: an int or numpy Generator; the same seed gives the same weights as
            :class:`chainrule.nn.MLP` with that seed.

    ``weights[k][i][j]`` is the Value of w_{i+1,j+1}^{(k+1)}, labelled ``"w{k+1}[{i+1},{j+1}]"``;
    with a bias, ``j = n_{k+1}`` (the last entry of each row) is the bias weight.
    ``forward`` takes one example and returns the output units as Values, so
    ``loss.backward()`` leaves ∂loss/∂w in every weight's ``grad``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Activation | Sequence[str | Activation] = "sigmoid",
        output_activation: ActivationSpec = None,
        bias: bool = True,
        seed: Seed = None,
    ) -> None:
        self.sizes = check_sizes(sizes)
        hidden = hidden_activations(activation, len(self.sizes) - 2)
        output = None if output_activation is None else _canonical_activation(output_activation)
        self.output_activation = output
        self.activations: list[str | Activation] = [*hidden, output or "identity"]
        self.bias = bool(bias)
        self._activation_spec = activation
        self._functions = [get_activation(entry) for entry in self.activations]
        rng = _generator(seed)
        self.weights: list[list[list[Value]]] = []
        for k, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            weight, bias_values = init_layer(rng, n_in, n_out, self.bias)
            rows = []
            for i in range(n_out):
                row = [
                    Value(float(weight[i, j]), label=weight_name(k, i + 1, j + 1))
                    for j in range(n_in)
                ]
                if bias_values is not None:
                    row.append(Value(float(bias_values[i]), label=weight_name(k, i + 1, n_in + 1)))
                rows.append(row)
            self.weights.append(rows)

    # --- forward ----------------------------------------------------------------------

    def forward(self, x: Sequence[float | Value]) -> list[Value]:
        """The output units for one example.

        Args:
            x: the n_1 input values, numbers or Values (Values are used as given,
                so gradients reach them too).
        """
        return self.layer_outputs(x)[-1]

    def layer_outputs(self, x: Sequence[float | Value]) -> list[list[Value]]:
        """Every layer's units ``[x^(1), ..., x^(m)]`` for one example (no bias units).

        Nodes are labelled as in the handouts: ``x{k}[i]`` for units, ``s{k}[i]``
        for summation units, ``x{k}[n_k+1]`` for the bias unit fixed at 1.
        """
        return self.trace(x)[0]

    def trace(self, x: Sequence[float | Value]) -> tuple[list[list[Value]], list[list[Value]]]:
        """``(units, sums)`` for one example: :meth:`layer_outputs`, and each layer's
        summation units ``[s^(2), ..., s^(m)]`` (after backward, ``s.grad`` is the
        handouts' δ = ∂L/∂s).

        Args:
            x: the n_1 input values, numbers or Values.
        """
        units = self._inputs(x)
        layers = [units]
        layer_sums = []
        for k, (rows, function) in enumerate(zip(self.weights, self._functions), start=1):
            if self.bias:
                units = [*units, Value(1.0, label=f"x{k}[{len(units) + 1}]")]
            sums = []
            for i, row in enumerate(rows, start=1):
                total = row[0] * units[0]
                for weight, unit in zip(row[1:], units[1:]):
                    total = total + weight * unit
                total.label = f"s{k + 1}[{i}]"
                sums.append(total)
            outputs = apply_activation(function, sums)
            for i, (unit, total) in enumerate(zip(outputs, sums), start=1):
                if unit is not total:
                    unit.label = f"x{k + 1}[{i}]"
            units = outputs
            layers.append(units)
            layer_sums.append(sums)
        return layers, layer_sums

    def _inputs(self, x: Any) -> list[Value]:
        if isinstance(x, (Value, str, bytes)) or not hasattr(x, "__len__"):
            raise TypeError(
                f"NeuronMLP.forward takes one example as a sequence of {self.sizes[0]} "
                f"numbers or Values, not {type(x).__name__}"
            )
        if isinstance(x, (np.ndarray, Tensor)):
            values: list[Any] = list(np.asarray(getattr(x, "data", x)).ravel())
        else:
            values = list(x)
        if len(values) != self.sizes[0]:
            raise ShapeError(
                f"NeuronMLP expects one example of {self.sizes[0]} input(s), got "
                f"{len(values)} (for a batch, call it once per example or use MLP)"
            )
        return [
            value if isinstance(value, Value) else Value(value, label=f"x1[{j}]")
            for j, value in enumerate(values, start=1)
        ]

    # --- parameters and state -----------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(())

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Every weight Value with its handout name, in :meth:`weight_names` order."""
        flat = [weight for rows in self.weights for row in rows for weight in row]
        return list(zip(weight_names(self.sizes, self.bias), flat))

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights with :class:`MLP`'s keys and shapes (``"layers.0.weight"`` ...)."""
        return self._collect(lambda weight: weight.data)

    def gradient_dict(self) -> dict[str, np.ndarray]:
        """∂loss/∂weight after backward, with the state dict's keys and shapes."""
        return self._collect(lambda weight: weight.grad)

    def _collect(self, read: Any) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for k, rows in enumerate(self.weights):
            n_in = self.sizes[k]
            matrix = np.array([[read(weight) for weight in row] for row in rows], dtype=np.float64)
            state[f"layers.{k}.weight"] = np.ascontiguousarray(matrix[:, :n_in])
            if self.bias:
                state[f"layers.{k}.bias"] = np.ascontiguousarray(matrix[:, n_in])
        return state

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: array.shape for key, array in self.state_dict().items()}

    def _assign_state(self, arrays: dict[str, np.ndarray]) -> None:
        for key, array in arrays.items():
            _, layer, kind = key.split(".")
            rows = self.weights[int(layer)]
            n_in = self.sizes[int(layer)]
            for i, row in enumerate(rows):
                if kind == "weight":
                    for j in range(n_in):
                        row[j].data = float(array[i, j])
                else:
                    row[n_in].data = float(array[i])

    # --- the handouts' weight names -------------------------------------------------------

    def get_gradients(self) -> dict[str, float]:
        """∂loss/∂weight after backward, by handout name."""
        return {name: weight.grad for name, weight in self.named_parameters()}

    # --- conversion and architecture ---------------------------------------------------------

    @classmethod
    def from_mlp(cls, mlp: MLP) -> NeuronMLP:
        """The neuron-level twin of a tensor-level :class:`MLP`, with its weights."""
        if not isinstance(mlp, MLP):
            raise TypeError(f"from_mlp takes an MLP, not {type(mlp).__name__}")
        hidden = mlp.activations[:-1]
        neuron = cls(mlp.sizes, hidden, mlp.output_activation, mlp.bias, seed=0)
        neuron._activation_spec = mlp._activation_spec
        neuron.load_state_dict(mlp.state_dict())
        return neuron

    def to_mlp(self, dtype: Any = "float64") -> MLP:
        """The tensor-level :class:`MLP` with this network's architecture and weights.

        Args:
            dtype: the MLP's dtype; ``"float32"`` rounds the weights.
        """
        mlp = MLP(
            self.sizes, self.activations[:-1], self.output_activation, self.bias, dtype, seed=0
        )
        mlp._activation_spec = self._activation_spec
        mlp.load_state_dict(self.state_dict())
        return mlp

    def config(self) -> dict[str, Any]:
        return {
            "type": "NeuronMLP",
            "sizes": list(self.sizes),
            "activation": _activation_spec_config(self._activation_spec, self.activations[:-1]),
            "output_activation": None
            if self.output_activation is None
            else activation_config(self.output_activation, "output_activation"),
            "bias": self.bias,
        }

    def _exchange_steps(self, where: str) -> list[Step]:
        return layer_steps(self.state_dict(), self.activations, where)

    def __repr__(self) -> str:
        return (
            f"NeuronMLP(sizes={self.sizes}, activation={_describe(self._activation_spec)}, "
            f"output_activation={_describe(self.output_activation)}, bias={self.bias})"
        )


__all__ = ["NeuronMLP"]

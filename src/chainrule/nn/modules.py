"""Modules: ``Module``, ``Linear``, ``Sequential``, activation modules and the ``MLP``.

A :class:`Module` owns parameters (leaf Tensors with ``requires_grad=True``, or
Values for the neuron-level network) and child modules, found by walking its
attributes in the order they were set. That order names the entries of
:meth:`Module.state_dict` (``"layers.0.weight"``), as in PyTorch.

:class:`MLP` is the handouts' multi-layer perceptron at the tensor level: layer
sizes ``[n_1, ..., n_m]``, one :class:`Linear` per pair of layers, an activation per
hidden layer and an optional output activation. The same network built from one
scalar Value per neuron and weight is :class:`chainrule.nn.NeuronMLP`; both share
the handout weight names (``"w1[1,2]"``) through :mod:`chainrule.nn.handout_names`.
:func:`chainrule.nn.from_config` (in :mod:`chainrule.nn.config`) rebuilds any of
them from its :meth:`Module.config`.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ChainruleError, ShapeError
from ..tensor import Tensor, resolve_dtype
from ..value import Value
from .activations import (
    LAYERWISE,
    Activation,
    activation_name,
    get_activation,
    identity,
    softmax,
)
from .exchange import (
    Affine,
    Step,
    layer_steps,
    named_steps,
    read_torch,
    require_torch,
    torch_sequential,
)
from .handout_names import HandoutWeights, handout_view

Parameter = Tensor | Value
Seed = int | np.random.Generator | None
# from_config's signature, handed to Module._from_config for nested configs.
BuildModule = Callable[[Mapping[str, Any], Seed], "Module"]
ActivationSpec = str | Activation | None


class StateDictError(ChainruleError, ValueError):
    """A state dict does not fit a module: missing or unknown keys, or wrong shapes."""


class ConfigError(ChainruleError, ValueError):
    """A module config cannot be written or rebuilt; the message says which part."""


class Module:
    """Base class of every layer, network and loss in :mod:`chainrule.nn`.

    Subclasses set parameters and child modules as attributes in ``__init__`` and
    define ``forward``; calling the module calls ``forward``. Parameters are the
    leaf Tensors with ``requires_grad=True`` (and leaf Values) among the public
    attributes; children are the Modules among them, or lists of Modules.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # --- parameters and children -------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct child modules with their names (``"layers.0"`` for list items)."""
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(value, Module):
                yield name, value
            elif _is_module_list(value):
                for index, child in enumerate(value):
                    yield f"{name}.{index}", child

    def _named_own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (Tensor, Value)) and _is_parameter(value):
                yield name, value

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Every parameter with its dotted name, each parameter once, in a fixed order."""
        seen: set[int] = set()
        result: list[tuple[str, Parameter]] = []
        for name, parameter in self._named_own_parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                result.append((name, parameter))
        for prefix, child in self.named_children():
            for name, parameter in child.named_parameters():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    result.append((f"{prefix}.{name}", parameter))
        return result

    def parameters(self) -> list[Parameter]:
        """Every parameter, in the order of :meth:`named_parameters` (for optimizers)."""
        return [parameter for _, parameter in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget accumulated gradients: Tensor grads become None, Value grads 0."""
        for parameter in self.parameters():
            parameter.zero_grad()

    # --- state ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's data, by name (changing it leaves the module alone)."""
        return {
            name: np.array(parameter.data, copy=True) for name, parameter in self.named_parameters()
        }

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy ``state`` into the parameters (in place, so optimizers keep working).

        Args:
            state: name -> array, as :meth:`state_dict` returns.
            strict: require exactly this module's keys; otherwise keys missing from
                ``state`` keep their values and unknown keys are an error only when
                strict.

        Every key and shape is checked before anything changes, so a failed load
        leaves the module as it was.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict takes a mapping name -> array, not {type(state).__name__}"
            )
        shapes = self._state_shapes()
        missing = [key for key in shapes if key not in state]
        unexpected = [key for key in state if key not in shapes]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise StateDictError(
                f"state dict does not fit {type(self).__name__}: {'; '.join(parts)} "
                f"(expected keys: {list(shapes)}); pass strict=False to load a subset"
            )
        arrays: dict[str, np.ndarray] = {}
        for key, expected_shape in shapes.items():
            if key not in state:
                continue
            array = _numeric_array(state[key], f"state dict entry {key!r}")
            if array.shape != expected_shape:
                raise StateDictError(
                    f"state dict entry {key!r} has shape {array.shape}, but "
                    f"{type(self).__name__} needs {expected_shape}"
                )
            arrays[key] = array
        self._assign_state(arrays)

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: np.shape(parameter.data) for name, parameter in self.named_parameters()}

    def _assign_state(self, arrays: dict[str, np.ndarray]) -> None:
        parameters = dict(self.named_parameters())
        for key, array in arrays.items():
            parameter = parameters[key]
            if isinstance(parameter, Value):
                parameter.data = float(array)
            elif parameter.data.flags.writeable:
                parameter.data[...] = array
            else:
                parameter.data = array.astype(parameter.data.dtype, copy=True)

    # --- architecture ---------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The architecture as a JSON-able dict with a ``"type"`` key (no weights).

        :func:`from_config` rebuilds a module of the same architecture from it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not describe its architecture: define config() "
            "(and accept its keys in __init__) to save or rebuild it"
        )

    def to_torch(self) -> Any:
        """This network as a ``torch.nn.Sequential`` with the same weights and outputs.

        See :func:`chainrule.export.to_torch` (needs ``pip install chainrule[torch]``).
        """
        torch = require_torch()
        return torch_sequential(network_steps(self), torch)

    def _exchange_steps(self, where: str) -> list[Step]:
        """This module as affine maps and named activations (see :mod:`.exchange`).

        Activation modules are known by their class name; a module with weights that
        has a counterpart elsewhere (Linear, the MLPs) overrides this.

        Args:
            where: the module's place in the model (``"the model[2]"``), for messages.
        """
        return named_steps(self, where)

    def _repr_arguments(self) -> str:
        try:
            config = self.config()
        except (NotImplementedError, ConfigError):
            return ""
        return ", ".join(f"{key}={value!r}" for key, value in config.items() if key != "type")

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self._repr_arguments()}"
        children = [f"  ({name}): {_indent(repr(child))}" for name, child in self.named_children()]
        if not children:
            return head + ")"
        return "\n".join([head, *children, ")"])

    @classmethod
    def _from_config(cls, arguments: dict[str, Any], seed: Seed, build: BuildModule) -> Module:
        """Build this class from a config's arguments (``from_config`` calls it).

        Args:
            arguments: the config without its ``"type"``.
            seed: seeds fresh weights.
            build: ``from_config`` itself, for modules whose config nests others.
        """
        return build_from_config(cls, arguments, seed)


def _is_module_list(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(item, Module) for item in value)
    )


def _is_parameter(node: Tensor | Value) -> bool:
    """A leaf Value, or a leaf Tensor that requires grad."""
    if node.op is not None:
        return False
    return node.requires_grad if isinstance(node, Tensor) else True


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


def build_from_config(cls: type[Module], arguments: dict[str, Any], seed: Seed) -> Module:
    """``cls(**arguments)`` with ``seed``, after checking the keys against its signature."""
    accepted = inspect.signature(cls).parameters
    unknown = sorted(key for key in arguments if key not in accepted or key == "seed")
    if unknown:
        raise ConfigError(
            f"config for {cls.__name__} has unknown keys {unknown}; it takes "
            f"{sorted(key for key in accepted if key != 'seed')}"
        )
    if "seed" in accepted:
        arguments = {**arguments, "seed": seed}
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"cannot build {cls.__name__} from its config: {error}") from error


# --- helpers shared with the neuron-level network -------------------------------------


def _generator(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
        raise TypeError(f"seed is an int, a numpy Generator or None, not {seed!r}")
    return np.random.default_rng(seed)


def init_layer(
    rng: np.random.Generator, fan_in: int, fan_out: int, bias: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Initial float64 weight (fan_out, fan_in) and bias (fan_out,) of one layer.

    Both are uniform on (−1/√fan_in, 1/√fan_in), PyTorch's default for ``Linear``;
    the weight is drawn first, then the bias, so a seed fixes them bit for bit.
    """
    bound = 1.0 / math.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, size=(fan_out, fan_in))
    bias_values = rng.uniform(-bound, bound, size=fan_out) if bias else None
    return weight, bias_values


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_sizes(sizes: Any) -> list[int]:
    """Validate layer sizes ``[n_1, ..., n_m]`` (m ≥ 2, each a positive int)."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise ValueError(
            f"sizes is a list of layer widths [n_1, ..., n_m], input first, got {sizes!r}"
        )
    if len(sizes) < 2:
        raise ValueError(
            f"sizes needs at least the input and the output width, got {list(sizes)!r}"
        )
    return [_positive_int(n, f"sizes[{k}]") for k, n in enumerate(sizes)]


def hidden_activations(activation: Any, hidden_layers: int) -> list[str | Activation]:
    """One activation (canonical name or callable) per hidden layer, checked."""
    if isinstance(activation, (list, tuple)):
        if len(activation) != hidden_layers:
            raise ValueError(
                f"activation lists one entry per hidden layer: this network has "
                f"{hidden_layers} hidden layer(s), the list has {len(activation)}"
            )
        entries = list(activation)
    else:
        # Checked even without hidden layers, so a typo never passes silently.
        entries = [_canonical_activation(activation)] * hidden_layers
    return [_canonical_activation(entry) for entry in entries]


def _canonical_activation(activation: ActivationSpec) -> str | Activation:
    get_activation(activation)  # raises for unknown names
    if isinstance(activation, str):
        return activation.strip().lower()
    # Callables stay as given, so forward calls exactly what the user passed.
    return activation if activation is not None else "identity"


def activation_config(activation: str | Activation, where: str) -> str:
    """The name of an activation for a config; callables without a name cannot be saved."""
    name = activation_name(activation)
    if name is None:
        raise ConfigError(
            f"{where} is the Python callable {activation!r}, which a config cannot hold; "
            "use an activation name to save or rebuild this network"
        )
    return name


def apply_activation(function: Activation, units: list[Value]) -> list[Value]:
    """Apply an activation to one neuron-level layer (softmax sees the whole layer)."""
    if function in LAYERWISE:
        return list(function(units))
    return [function(unit) for unit in units]


def _numeric_array(data: Any, what: str) -> np.ndarray:
    if isinstance(data, (Tensor, Value)):
        data = data.data
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers, got an array of dtype {array.dtype}")
    return array


def _as_input(x: Any, features: int, dtype: np.dtype, where: str) -> Tensor:
    """``x`` as a Tensor of ``dtype`` whose last axis has ``features`` entries."""
    if isinstance(x, Tensor):
        tensor = x
        if tensor.data.dtype != dtype and not tensor.requires_grad:
            tensor = Tensor(tensor.data.astype(dtype))
    else:
        array = np.asarray(x)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{where} takes numbers (a Tensor, numpy array or nested lists), got "
                f"{type(x).__name__} holding {array.dtype}"
            )
        tensor = Tensor(array.astype(dtype, copy=False))
    if tensor.ndim == 0 or tensor.shape[-1] != features:
        raise ShapeError(
            f"{where} expects inputs with {features} feature(s) in the last axis "
            f"(rows = examples), got shape {tensor.shape}"
        )
    return tensor


# --- layers -------------------------------------------------------------------------


class Linear(Module):
    """An affine layer ``x @ weight.T + bias``.

    Args:
        in_features: width of the input (last axis of x).
        out_features: width of the output.
        bias: whether to add a bias (the handouts' bias unit fixed at 1).
        dtype: ``"float64"`` or ``"float32"``.
        seed: an int or a numpy Generator for the initial weights (uniform on
            ±1/√in_features, as in PyTorch); None for fresh randomness.

    ``weight`` has shape (out_features, in_features): ``weight[i, j]`` is the
    handouts' w_{i+1,j+1}, the weight from input unit j+1 to output unit i+1.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = "float64",
        seed: Seed = None,
    ) -> None:
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        resolved = resolve_dtype(dtype, "Linear")
        weight, bias_values = init_layer(
            _generator(seed), self.in_features, self.out_features, bool(bias)
        )
        self.weight = Tensor(weight.astype(resolved), requires_grad=True, label="weight")
        self.bias = (
            None
            if bias_values is None
            else Tensor(bias_values.astype(resolved), requires_grad=True, label="bias")
        )

    def forward(self, x: Any) -> Tensor:
        """``x @ weight.T + bias`` for x of shape (..., in_features)."""
        x = _as_input(x, self.in_features, self.weight.data.dtype, "Linear")
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias

    def config(self) -> dict[str, Any]:
        return {
            "type": "Linear",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": str(self.weight.data.dtype),
        }

    def _exchange_steps(self, where: str) -> list[Step]:
        bias = None if self.bias is None else self.bias.data
        return [Affine(self.weight.data, bias)]


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(2, 3), Tanh())``.

    Args:
        modules: the steps, in order. Their parameters are named by position
            (``"0.weight"``), as in PyTorch.
    """

    def __init__(self, *modules: Module) -> None:
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential takes Modules; step {index} is {type(module).__name__}"
                )
        self._steps = list(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for index, module in enumerate(self._steps):
            yield str(index), module

    def forward(self, x: Any) -> Any:
        """Feed ``x`` through every step in order."""
        for module in self._steps:
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._steps)

    def __getitem__(self, index: int) -> Module:
        return self._steps[index]

    def config(self) -> dict[str, Any]:
        return {"type": "Sequential", "modules": [module.config() for module in self._steps]}

    def _repr_arguments(self) -> str:
        return ""

    @classmethod
    def _from_config(cls, arguments: dict[str, Any], seed: Seed, build: BuildModule) -> Module:
        unknown = sorted(set(arguments) - {"modules"})
        steps = arguments.get("modules")
        if unknown or not isinstance(steps, list):
            raise ConfigError(
                'a Sequential config is {"type": "Sequential", "modules": [configs]}, '
                f"got keys {sorted(arguments)}"
            )
        rng = _generator(seed)
        return cls(*[build(step, rng) for step in steps])


def network_steps(module: Module) -> list[Step]:
    """The network as affine maps and named activations, in order (the ONNX and PyTorch
    exchanges read it); Sequentials are opened, every other module gives its own steps.

    Raises:
        ExportError: a part of the network has no counterpart (the message names it).
    """
    stack: list[tuple[Module, str]] = [(module, "the model")]
    # An explicit stack (Sequential nests) so a deep model cannot overflow Python's.
    order: list[tuple[Module, str]] = []
    while stack:
        current, where = stack.pop()
        if isinstance(current, Sequential):
            stack.extend(reversed([(step, f"{where}[{i}]") for i, step in enumerate(current)]))
        else:
            order.append((current, where))
    steps: list[Step] = []
    for current, where in order:
        if isinstance(current, Module):
            steps.extend(current._exchange_steps(where))
        else:
            steps.extend(named_steps(current, where))
    return steps


# --- activation modules -----------------------------------------------------------------


class _ActivationModule(Module):
    """A parameter-free module applying one activation function."""

    _function: Activation = staticmethod(identity)

    def forward(self, x: Any) -> Any:
        """The activation applied to ``x`` (a Tensor, a Value or an array)."""
        return type(self)._function(x)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__}


class Sigmoid(_ActivationModule):
    """σ(x) = 1/(1 + e⁻ˣ), elementwise."""

    _function = staticmethod(get_activation("sigmoid"))


class Tanh(_ActivationModule):
    """tanh(x), elementwise."""

    _function = staticmethod(get_activation("tanh"))


class ReLU(_ActivationModule):
    """max(x, 0), elementwise."""

    _function = staticmethod(get_activation("relu"))


class Softplus(_ActivationModule):
    """log(1 + eˣ), elementwise, exact for large |x|."""

    _function = staticmethod(get_activation("softplus"))


class Identity(_ActivationModule):
    """Returns its input unchanged."""


class Softmax(_ActivationModule):
    """eˣ / Σ eˣ along the last axis (over a whole layer)."""

    _function = staticmethod(softmax)


# --- the multi-layer perceptron ---------------------------------------------------------


class MLP(HandoutWeights, Module):
    """The handouts' multi-layer perceptron, on tensors (rows = examples).

    Args:
        sizes: layer widths ``[n_1, ..., n_m]``, input first, output last.
        activation: the hidden layers' activation: a name (``"sigmoid"``, ``"tanh"``,
            ``"relu"``, ``"identity"``, ...; see :data:`chainrule.nn.ACTIVATIONS`), a
            callable on Tensors, or a list with one entry per hidden layer (the
            quiz's g and h).
        output_activation: None (a linear output), ``"sigmoid"``, ``"softmax"`` or
            any activation name or callable.
        bias: give every layer after the input a bias (the handouts' unit fixed at 1).
        dtype: ``"float64"`` or ``"float32"``.
        seed: an int or a numpy Generator; the same seed gives the same weights bit
            for bit (and the same weights as :class:`NeuronMLP` with that seed).

    ``layers[k]`` is the :class:`Linear` from layer k+1 to layer k+2;
    ``activations`` has one entry per layer after the input (the output's last).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Activation | Sequence[str | Activation] = "sigmoid",
        output_activation: ActivationSpec = None,
        bias: bool = True,
        dtype: Any = "float64",
        seed: Seed = None,
    ) -> None:
        self.sizes = check_sizes(sizes)
        hidden = hidden_activations(activation, len(self.sizes) - 2)
        output = None if output_activation is None else _canonical_activation(output_activation)
        self.output_activation = output
        self.activations: list[str | Activation] = [*hidden, output or "identity"]
        self.bias = bool(bias)
        self.dtype = resolve_dtype(dtype, type(self).__name__)
        self._activation_spec = activation
        rng = _generator(seed)
        self.layers = [
            Linear(n_in, n_out, self.bias, self.dtype, seed=rng)
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])
        ]
        for k, layer in enumerate(self.layers, start=1):
            # Labels follow the quiz's W^(k), b^(k) so diagrams read like the handout.
            layer.weight.label = f"W{k}"
            if layer.bias is not None:
                layer.bias.label = f"b{k}"
        self._hidden_functions = [get_activation(entry) for entry in hidden]
        self._output_function = None if output is None else get_activation(output)

    def forward(self, x: Any) -> Tensor:
        """The network's output for ``x``: shape (batch, n_m).

        Args:
            x: a Tensor, numpy array, list of rows or pandas DataFrame of shape
                (batch, n_1); a single example of shape (n_1,) is taken as a batch of one.
        """
        out = self.forward_logits(x)
        return out if self._output_function is None else self._output_function(out)

    def forward_logits(self, x: Any) -> Tensor:
        """The output before the output activation (use it with the logit losses)."""
        h = self._input(x)
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            h = h @ layer.weight.T
            if layer.bias is not None:
                h = h + layer.bias
            if k < last:
                h = self._hidden_functions[k](h)
        return h

    def layer_outputs(self, x: Any) -> list[Tensor]:
        """The value of every layer, ``[x^(1), ..., x^(m)]``, for inspection."""
        h = self._input(x)
        outputs = [h]
        functions = [*self._hidden_functions, self._output_function or identity]
        for layer, function in zip(self.layers, functions):
            h = function(layer(h))
            outputs.append(h)
        return outputs

    def _input(self, x: Any) -> Tensor:
        h = _as_input(x, self.sizes[0], self.dtype, "MLP")
        if h.ndim == 1:
            h = h.reshape(1, self.sizes[0])
        return h

    # --- the handouts' weight names (the rest in HandoutWeights) -------------------

    def get_gradients(self) -> dict[str, float]:
        """∂loss/∂weight after backward, by handout name (0 where no gradient yet)."""
        grads = {
            name: np.zeros(parameter.data.shape) if parameter.grad is None else parameter.grad
            for name, parameter in self.named_parameters()
        }
        return handout_view(grads, self.sizes, self.bias)

    # --- architecture -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "type": "MLP",
            "sizes": list(self.sizes),
            "activation": _activation_spec_config(self._activation_spec, self.activations[:-1]),
            "output_activation": None
            if self.output_activation is None
            else activation_config(self.output_activation, "output_activation"),
            "bias": self.bias,
            "dtype": str(self.dtype),
        }

    @classmethod
    def from_torch(cls, module: Any) -> MLP:
        """An MLP with the weights of a PyTorch ``Sequential`` of ``Linear`` layers and
        activations; see :func:`chainrule.export.from_torch`.

        Args:
            module: the ``torch.nn.Sequential`` (or one ``torch.nn.Linear``).
        """
        read = read_torch(module)
        hidden = read.activations[:-1]
        network = MLP(
            read.sizes,
            activation=hidden if hidden else "identity",
            output_activation=None if read.activations[-1] == "identity" else read.activations[-1],
            bias=read.bias,
            dtype=read.dtype,
        )
        network.load_state_dict(read.state, strict=True)
        return network

    def _exchange_steps(self, where: str) -> list[Step]:
        return layer_steps(self.state_dict(), self.activations, where)

    def _repr_arguments(self) -> str:
        activation = _describe(self._activation_spec)
        output = _describe(self.output_activation)
        return (
            f"sizes={self.sizes}, activation={activation}, output_activation={output}, "
            f"bias={self.bias}, dtype={str(self.dtype)!r}"
        )

    def __repr__(self) -> str:
        return f"MLP({self._repr_arguments()})"


def _describe(activation: Any) -> str:
    if isinstance(activation, (list, tuple)):
        return "[" + ", ".join(_describe(entry) for entry in activation) + "]"
    if activation is None or isinstance(activation, str):
        return repr(activation)
    name = activation_name(activation)
    return repr(name) if name is not None else getattr(activation, "__name__", repr(activation))


def _activation_spec_config(spec: Any, hidden: list[str | Activation]) -> Any:
    """The ``activation`` argument for a config: one name, or a list of names."""
    if isinstance(spec, (list, tuple)):
        return [activation_config(entry, f"activation[{k}]") for k, entry in enumerate(hidden)]
    return activation_config(spec, "activation")

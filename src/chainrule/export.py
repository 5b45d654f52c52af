"""Leaving chainrule: a trained network as an ONNX file or a PyTorch module, and back.

:func:`export_onnx` writes any network :func:`chainrule.save` can write (``MLP``,
``NeuronMLP``, ``Linear``, ``Sequential`` of those and the activation modules) as an
ONNX graph of plain ``MatMul``/``Add``/activation nodes, built with the ``onnx``
package's helper API. For a model saved by ``chainrule train --save`` it also writes
the stored preprocessing into the graph — each feature column is one graph input,
numeric columns are standardised, text columns one-hot encoded (``ai.onnx.ml``
``OneHotEncoder``) — and the outputs a ``chainrule predict`` user expects: class
probabilities and the predicted label, or the prediction in the target's units.

:func:`to_torch` and :func:`from_torch` exchange networks with PyTorch through their
weights (the same ``(out, in)`` layout on both sides); ``Module.to_torch()`` and
``MLP.from_torch(...)`` call them.

``onnx`` (and ``onnxruntime`` to run the result) and ``torch`` are optional: install
``chainrule[onnx]`` or ``chainrule[torch]``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import write_bytes_atomically
from .errors import ChainruleError

if TYPE_CHECKING:
    from .cli._preprocessing import ColumnEncoding, Preprocessing
    from .nn import MLP, Module

__all__ = ["ExportError", "export_onnx", "from_torch", "to_torch"]

#: The ONNX operator set the graphs use (opset 17: onnxruntime 1.14 and later).
ONNX_OPSET = 17
#: The ONNX file format version written, read by onnxruntime 1.15 and later.
ONNX_IR_VERSION = 9

PathLike = str | os.PathLike[str]

#: Text cells an exported graph takes as missing (the command line's missing cells, in
#: their usual capitalisations; ONNX has no case-insensitive string comparison).
MISSING_STRINGS = (
    "", "NA", "na", "Na", "N/A", "n/a", "NaN", "nan", "NAN", "null", "NULL", "Null",
    "None", "none", "NONE", "?",
)  # fmt: skip


class ExportError(ChainruleError, ValueError):
    """A network cannot be exported (an activation given as an unnamed Python function,
    a module type the target format has no counterpart for), or a PyTorch module cannot
    be read as an MLP; the message says which part and what to do."""


# --- the network as a list of steps -----------------------------------------------------


@dataclass(frozen=True)
class _Affine:
    """``x @ weight.T + bias``; weight has shape (out, in)."""

    weight: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True)
class _Activation:
    name: str  # a canonical name of chainrule.nn.ACTIVATIONS


_Step = _Affine | _Activation

#: Activation names the exporters know, by their canonical chainrule names.
_EXPORTABLE = ("sigmoid", "tanh", "relu", "softplus", "identity", "softmax")


def _steps(module: Module) -> list[_Step]:
    """The network as affine maps and named activations, in order."""
    from . import nn
    from .nn.activations import activation_name

    steps: list[_Step] = []
    stack: list[tuple[Module, str]] = [(module, "the model")]
    # An explicit stack (Sequential nests) so a deep model cannot overflow Python's.
    order: list[tuple[Module, str]] = []
    while stack:
        current, where = stack.pop()
        if isinstance(current, nn.Sequential):
            stack.extend(reversed([(step, f"{where}[{i}]") for i, step in enumerate(current)]))
        else:
            order.append((current, where))
    for current, where in order:
        if isinstance(current, (nn.MLP, nn.NeuronMLP)):
            state = current.state_dict()
            for k, activation in enumerate(current.activations):
                bias = state.get(f"layers.{k}.bias")
                steps.append(_Affine(np.asarray(state[f"layers.{k}.weight"]), bias))
                name = activation_name(activation)
                if name not in _EXPORTABLE:
                    raise ExportError(
                        f"cannot export {where}: layer {k + 1}'s activation "
                        f"{getattr(activation, '__name__', activation)!r} is a Python function "
                        f"without a counterpart; use one of {', '.join(_EXPORTABLE)}"
                    )
                if name != "identity":
                    steps.append(_Activation(name))
        elif isinstance(current, nn.Linear):
            bias = None if current.bias is None else current.bias.data
            steps.append(_Affine(current.weight.data, bias))
        elif type(current).__name__.lower() in _EXPORTABLE:
            if type(current).__name__ != "Identity":
                steps.append(_Activation(type(current).__name__.lower()))
        else:
            raise ExportError(
                f"cannot export {where}: a {type(current).__name__} has no ONNX or PyTorch "
                "counterpart here; export MLP, NeuronMLP, Linear, Sequential and activation "
                "modules"
            )
    return steps


def _input_width(steps: Sequence[_Step], module: Module) -> int:
    for step in steps:
        if isinstance(step, _Affine):
            return int(step.weight.shape[1])
    raise ExportError(f"cannot export {type(module).__name__}: it has no layer with weights")


def _dtype(steps: Sequence[_Step]) -> np.dtype:
    dtypes = {step.weight.dtype for step in steps if isinstance(step, _Affine)}
    return np.dtype(np.float64) if np.dtype(np.float64) in dtypes else np.dtype(np.float32)


# --- ONNX -----------------------------------------------------------------------------


def export_onnx(
    model: Module | PathLike,
    path: PathLike,
    *,
    preprocessing: bool = True,
) -> Path:
    """Write ``model`` as an ONNX file that onnxruntime (or any ONNX runtime) can run.

    Args:
        model: a chainrule network, or the path of a model file (loaded with
            :func:`chainrule.load`, digest checked). A model saved by
            ``chainrule train --save`` (a ``TabularModel`` once loaded) carries its
            preprocessing, which is then written into the graph.
        path: where to write the ``.onnx`` file (atomically).
        preprocessing: write the stored ``chainrule train`` preprocessing into the
            graph when there is one (the default). With ``False``, or for a network
            without one, the graph has one input ``"input"`` of shape (rows, inputs)
            and one output ``"output"``, exactly the network's forward pass.

    With preprocessing the graph has one input per feature column, named after the
    column, of shape (rows, 1): numbers for numeric columns (standardised with the
    stored mean and scale), strings for one-hot columns (an unknown category gets all
    zeros, as ``chainrule predict`` does). A model trained with ``--impute`` fills
    missing cells as ``chainrule predict`` does: NaN in a numeric input, and
    :data:`MISSING_STRINGS` in a text input, take the stored fill value. Its outputs
    are ``"probabilities"`` (rows, classes) and ``"label"`` (rows,) strings for a
    classifier, or ``"prediction"`` (rows, 1) in the target's units for a regression.

    Returns:
        The path written.

    Raises:
        ExportError: a part of the network has no ONNX counterpart.
        ImportError: the ``onnx`` package is not installed (``pip install chainrule[onnx]``).
    """
    from .io import load
    from .tabular import TabularModel

    loaded = load(model) if isinstance(model, (str, os.PathLike)) else model
    network: Module = loaded
    stored: Preprocessing | None = None
    if isinstance(loaded, TabularModel):
        network = loaded.network
        stored = loaded.preprocessing if preprocessing else None
    graph_model = _onnx_model(network, stored)
    return write_bytes_atomically(path, graph_model.SerializeToString())


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "exporting to ONNX needs the onnx package: pip install 'chainrule[onnx]'"
        ) from None
    return onnx


class _GraphBuilder:
    """Collects ONNX nodes and constants under fresh names."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, hint: str, value: Any, dtype: np.dtype | None = None) -> str:
        name = self.name(hint)
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str, **attributes: Any) -> str:
        output = self.name(hint)
        domain = attributes.pop("domain", "")
        self.nodes.append(
            self.onnx.helper.make_node(
                op, list(inputs), [output], name=output, domain=domain, **attributes
            )
        )
        return output

    def network(self, steps: Sequence[_Step], x: str) -> str:
        """The nodes of the network's forward pass from ``x``; the output's name."""
        for step in steps:
            if isinstance(step, _Affine):
                weight_t = self.constant("weight_t", step.weight.T)
                x = self.node("MatMul", [x, weight_t], "matmul")
                if step.bias is not None:
                    x = self.node("Add", [x, self.constant("bias", step.bias)], "add")
            else:
                x = self.activation(step.name, x)
        return x

    def activation(self, name: str, x: str) -> str:
        if name == "sigmoid":
            return self.node("Sigmoid", [x], "sigmoid")
        if name == "tanh":
            return self.node("Tanh", [x], "tanh")
        if name == "relu":
            return self.node("Relu", [x], "relu")
        if name == "softmax":
            return self.node("Softmax", [x], "softmax", axis=-1)
        # softplus, exact for large |x| as chainrule computes it: max(x, 0) + log1p(e^-|x|).
        positive = self.node("Relu", [x], "relu")
        decay = self.node("Exp", [self.node("Neg", [self.node("Abs", [x], "abs")], "neg")], "exp")
        one = self.constant("one", 1.0)
        tail = self.node("Log", [self.node("Add", [one, decay], "add")], "log")
        return self.node("Add", [positive, tail], "softplus")


def _onnx_model(network: Module, stored: Preprocessing | None) -> Any:
    onnx = _require_onnx()
    helper = onnx.helper
    steps = _steps(network)
    width = _input_width(steps, network)
    dtype = _dtype(steps)
    element = helper.np_dtype_to_tensor_dtype(dtype)
    builder = _GraphBuilder(onnx, dtype)
    if stored is None:
        graph_inputs = [helper.make_tensor_value_info("input", element, ["rows", width])]
        out = builder.network(steps, "input")
        builder.nodes.append(helper.make_node("Identity", [out], ["output"], name="output"))
        n_out = _output_width(steps)
        graph_outputs = [helper.make_tensor_value_info("output", element, ["rows", n_out])]
    else:
        graph_inputs, x = _preprocessing_nodes(builder, stored, element)
        if len(stored.input_names) != width:
            raise ExportError(
                f"the stored preprocessing makes {len(stored.input_names)} inputs but the "
                f"network takes {width}; train and save the model again"
            )
        graph_outputs = _prediction_nodes(builder, stored, builder.network(steps, x), element)
    graph = helper.make_graph(
        builder.nodes, "chainrule", graph_inputs, graph_outputs, builder.initializers
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if stored is not None:
        opsets.append(helper.make_opsetid("ai.onnx.ml", 3))
    from . import __version__

    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="chainrule", producer_version=__version__
    )
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return model


def _output_width(steps: Sequence[_Step]) -> int:
    affine = [step for step in steps if isinstance(step, _Affine)]
    return int(affine[-1].weight.shape[0])


def _preprocessing_nodes(
    builder: _GraphBuilder, stored: Preprocessing, element: int
) -> tuple[list[Any], str]:
    """One graph input per feature column, encoded as ``chainrule predict`` encodes it."""
    helper = builder.onnx.helper
    inputs, blocks = [], []
    for encoding in stored.features:
        column = encoding.column
        if encoding.kind == "numeric":
            inputs.append(helper.make_tensor_value_info(column, element, ["rows", 1]))
            blocks.append(_numeric_nodes(builder, encoding))
        else:
            string = builder.onnx.TensorProto.STRING
            inputs.append(helper.make_tensor_value_info(column, string, ["rows", 1]))
            blocks.append(_one_hot_nodes(builder, encoding, element))
    joined = blocks[0] if len(blocks) == 1 else builder.node("Concat", blocks, "inputs", axis=1)
    return inputs, joined


def _numeric_nodes(builder: _GraphBuilder, encoding: ColumnEncoding) -> str:
    """(x - mean) / scale, with NaN first replaced by the fill value when there is one."""
    x = encoding.column
    if encoding.fill is not None:
        missing = builder.node("IsNaN", [x], "missing")
        fill = builder.constant("fill", [[float(encoding.fill)]])
        x = builder.node("Where", [missing, fill, x], "filled")
    centred = builder.node("Sub", [x, builder.constant("mean", encoding.mean)], "sub")
    return builder.node("Div", [centred, builder.constant("scale", encoding.scale)], "standardised")


def _one_hot_nodes(builder: _GraphBuilder, encoding: ColumnEncoding, element: int) -> str:
    """One 0/1 input per category; an unknown category gives zeros, and a missing cell
    the fill category's input when there is a fill value.

    The encoder also has one slot per missing-cell spelling; a constant matrix then
    maps those slots onto the fill category (or onto nothing), all in one MatMul.
    """
    categories = list(encoding.categories)
    spellings = [] if encoding.fill is None else list(MISSING_STRINGS)
    vocabulary = categories + [s for s in spellings if s not in categories]
    hot = builder.node(
        "OneHotEncoder",
        [encoding.column],
        "one_hot",
        domain="ai.onnx.ml",
        cats_strings=vocabulary,
        zeros=1,  # an unknown category gives all zeros, as in chainrule predict
    )
    shape = builder.constant("shape", [-1, len(vocabulary)], np.dtype(np.int64))
    rows = builder.node("Cast", [builder.node("Reshape", [hot, shape], "rows")], "cast", to=element)
    if len(vocabulary) == len(categories):
        return rows
    mapping = np.zeros((len(vocabulary), len(categories)))
    mapping[: len(categories), :] = np.eye(len(categories))
    if encoding.fill in categories:
        mapping[len(categories) :, categories.index(str(encoding.fill))] = 1.0
    return builder.node("MatMul", [rows, builder.constant("fill_map", mapping)], "filled")


def _prediction_nodes(
    builder: _GraphBuilder, stored: Preprocessing, out: str, element: int
) -> list[Any]:
    """Nodes and graph outputs that turn the network's output into predictions."""
    helper = builder.onnx.helper
    target = stored.target
    if target.task == "regression":
        scaled = builder.node("Mul", [out, builder.constant("scale", target.scale)], "mul")
        builder.nodes.append(
            helper.make_node(
                "Add",
                [scaled, builder.constant("mean", target.mean)],
                ["prediction"],
                name="prediction",
            )
        )
        return [helper.make_tensor_value_info("prediction", element, ["rows", 1])]
    if target.task == "binary":
        one = builder.constant("one", [[1.0]])
        negative = builder.node("Sub", [one, out], "negative")
        builder.nodes.append(helper.make_node("Concat", [negative, out], ["probabilities"], axis=1))
    else:
        builder.nodes.append(helper.make_node("Identity", [out], ["probabilities"]))
    best = builder.node("ArgMax", ["probabilities"], "argmax", axis=1, keepdims=0)
    labels = builder.constant("classes", np.array(target.classes, dtype=object), np.dtype(object))
    builder.nodes.append(helper.make_node("Gather", [labels, best], ["label"], axis=0))
    string = builder.onnx.TensorProto.STRING
    return [
        helper.make_tensor_value_info("probabilities", element, ["rows", len(target.classes)]),
        helper.make_tensor_value_info("label", string, ["rows"]),
    ]


# --- PyTorch --------------------------------------------------------------------------


def _require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            "exchanging networks with PyTorch needs torch: pip install 'chainrule[torch]'"
        ) from None
    return torch


_TORCH_ACTIVATIONS = {
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "relu": "ReLU",
    "softplus": "Softplus",
    "softmax": "Softmax",
}


def to_torch(model: Module) -> Any:
    """The network as a ``torch.nn.Sequential`` with the same weights and outputs.

    Args:
        model: an ``MLP``, ``NeuronMLP``, ``Linear``, ``Sequential`` or activation
            module; its dtype (float32 or float64) is kept.

    Returns:
        ``torch.nn.Sequential`` of ``torch.nn.Linear`` and activation modules
        (``Softmax(dim=-1)``); ``module(torch.from_numpy(x))`` equals ``model(x)``.

    Raises:
        ExportError: a part of the network has no PyTorch counterpart.
        ImportError: torch is not installed (``pip install chainrule[torch]``).
    """
    torch = _require_torch()
    steps = _steps(model)
    dtype = torch.float64 if _dtype(steps) == np.float64 else torch.float32
    layers = []
    for step in steps:
        if isinstance(step, _Affine):
            n_out, n_in = step.weight.shape
            linear = torch.nn.Linear(n_in, n_out, bias=step.bias is not None, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(step.weight)))
                if step.bias is not None:
                    linear.bias.copy_(torch.from_numpy(np.array(step.bias)))
            layers.append(linear)
        elif step.name == "softmax":
            layers.append(torch.nn.Softmax(dim=-1))
        elif step.name == "softplus":
            # torch's default threshold (20) returns x above it, where chainrule's exact
            # softplus differs by e^-20 ≈ 2e-9; a huge threshold keeps them equal.
            layers.append(torch.nn.Softplus(threshold=1e30))
        else:
            layers.append(getattr(torch.nn, _TORCH_ACTIVATIONS[step.name])())
    return torch.nn.Sequential(*layers)


def from_torch(module: Any) -> MLP:
    """An ``MLP`` with the weights of a PyTorch network of linear layers and activations.

    Args:
        module: a ``torch.nn.Sequential`` (or a single ``torch.nn.Linear``) alternating
            ``Linear`` layers and activations: ``Sigmoid``, ``Tanh``, ``ReLU``,
            ``Softplus`` (default beta 1), ``Identity``, and, after the last layer,
            ``Softmax`` over the last dimension. Two linear layers in a row have the
            identity activation between them. All layers must have a bias, or none.

    Returns:
        An ``MLP`` whose outputs equal the module's, of its dtype (float32 or float64).

    Raises:
        ExportError: the module is not such a network (the message names the part).
    """
    torch = _require_torch()
    from . import nn

    children = list(module) if isinstance(module, torch.nn.Sequential) else [module]
    linears: list[Any] = []
    activations: list[str] = []  # one per linear layer: the activation after it
    for index, child in enumerate(_flatten_torch(children, torch)):
        name = _torch_activation_name(child, torch, index)
        if isinstance(child, torch.nn.Linear):
            linears.append(child)
            activations.append("identity")
        elif name is not None and linears and activations[-1] == "identity":
            activations[-1] = name
        elif name == "identity":
            continue
        else:
            raise ExportError(
                f"cannot read the PyTorch module's part {index} ({type(child).__name__}) into "
                "an MLP: expected Linear layers each followed by at most one activation"
            )
    if not linears:
        raise ExportError("the PyTorch module has no Linear layer")
    sizes = [linears[0].in_features] + [layer.out_features for layer in linears]
    for previous, layer in itertools.pairwise(linears):
        if layer.in_features != previous.out_features:
            raise ExportError(
                f"a Linear layer of {previous.out_features} outputs is followed by one of "
                f"{layer.in_features} inputs"
            )
    has_bias = {layer.bias is not None for layer in linears}
    if len(has_bias) != 1:
        raise ExportError("some Linear layers have a bias and others not; an MLP needs one rule")
    if "softmax" in activations[:-1]:
        raise ExportError("softmax is supported only after the last Linear layer")
    weight_dtype = linears[0].weight.dtype
    dtype = "float64" if weight_dtype == torch.float64 else "float32"
    output = None if activations[-1] == "identity" else activations[-1]
    hidden = activations[:-1]
    network = nn.MLP(
        sizes,
        activation=hidden if hidden else "identity",
        output_activation=output,
        bias=has_bias.pop(),
        dtype=dtype,
    )
    state = {}
    for k, layer in enumerate(linears):
        state[f"layers.{k}.weight"] = layer.weight.detach().cpu().numpy().astype(dtype)
        if layer.bias is not None:
            state[f"layers.{k}.bias"] = layer.bias.detach().cpu().numpy().astype(dtype)
    network.load_state_dict(state, strict=True)
    return network


def _flatten_torch(children: list[Any], torch: Any) -> Iterator[Any]:
    for child in children:
        if isinstance(child, torch.nn.Sequential):
            yield from _flatten_torch(list(child), torch)
        else:
            yield child


def _torch_activation_name(child: Any, torch: Any, index: int) -> str | None:
    """The chainrule name of a torch activation module; None for anything else."""
    if isinstance(child, torch.nn.Softplus) and child.beta != 1:
        raise ExportError(f"part {index}: Softplus with beta={child.beta} has no counterpart")
    if isinstance(child, torch.nn.Softmax) and child.dim not in (-1, 1, None):
        raise ExportError(f"part {index}: Softmax over dim {child.dim}; use dim=-1")
    for name, class_name in {**_TORCH_ACTIVATIONS, "identity": "Identity"}.items():
        if isinstance(child, getattr(torch.nn, class_name)):
            return name
    return None

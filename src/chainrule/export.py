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
weights (the same ``(out, in)`` layout on both sides), as ``Module.to_torch()`` and
``MLP.from_torch(...)`` do. Both writers read a network as the list of steps that
:mod:`chainrule.nn.exchange` defines, which is where the PyTorch conversion lives.

``onnx`` (and ``onnxruntime`` to run the result) and ``torch`` are optional: install
``chainrule[onnx]`` or ``chainrule[torch]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._files import write_bytes_atomically
from .io import load
from .nn.exchange import Affine, ExportError, Step, require_torch, steps_dtype, torch_sequential
from .nn.modules import MLP, Module, network_steps
from .tabular import TabularModel

if TYPE_CHECKING:
    from .tables.preprocessing import ColumnEncoding, Preprocessing

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


# --- the network as a list of steps (see chainrule.nn.exchange) ----------------------


def _input_width(steps: Sequence[Step], module: Module) -> int:
    for step in steps:
        if isinstance(step, Affine):
            return int(step.weight.shape[1])
    raise ExportError(f"cannot export {type(module).__name__}: it has no layer with weights")


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

    def network(self, steps: Sequence[Step], x: str) -> str:
        """The nodes of the network's forward pass from ``x``; the output's name."""
        for step in steps:
            if isinstance(step, Affine):
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
    steps = network_steps(network)
    width = _input_width(steps, network)
    dtype = steps_dtype(steps)
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
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="chainrule", producer_version=__version__
    )
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return model


def _output_width(steps: Sequence[Step]) -> int:
    affine = [step for step in steps if isinstance(step, Affine)]
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
    torch = require_torch()
    return torch_sequential(network_steps(model), torch)


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
    return MLP.from_torch(module)

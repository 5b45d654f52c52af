"""A network as other frameworks read it: affine maps and named activations, in order.

Every module that has a counterpart elsewhere describes itself as a list of steps
(``Module._exchange_steps``, walked by :func:`chainrule.nn.modules.network_steps`);
:func:`torch_sequential` turns such a list into a ``torch.nn.Sequential`` and
:func:`read_torch` reads a PyTorch network back into what an ``MLP`` is built from. The
ONNX writer (:mod:`chainrule.export`) reads the same steps. This module knows no module
class, so :mod:`chainrule.nn.modules` builds on it without a circle.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ChainruleError
from .activations import Activation, activation_name


class ExportError(ChainruleError, ValueError):
    """A network cannot be exported (an activation given as an unnamed Python function,
    a module type the target format has no counterpart for), or a PyTorch module cannot
    be read as an MLP; the message says which part and what to do."""


@dataclass(frozen=True)
class Affine:
    """``x @ weight.T + bias``; weight has shape (out, in)."""

    weight: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True)
class NamedActivation:
    """An activation by its canonical name (one of :data:`EXPORTABLE`)."""

    name: str


Step = Affine | NamedActivation

#: Activation names the exporters know, by their canonical chainrule names.
EXPORTABLE = ("sigmoid", "tanh", "relu", "softplus", "identity", "softmax")


def named_steps(module: object, where: str) -> list[Step]:
    """The steps of an activation module, known by its class name (``Tanh``, ``Identity``).

    Args:
        module: the module (any object: the class name is all that is read).
        where: the module's place in the model (``"the model[2]"``), for the message.

    Raises:
        ExportError: the class names no activation with a counterpart.
    """
    name = type(module).__name__.lower()
    if name not in EXPORTABLE:
        raise ExportError(
            f"cannot export {where}: a {type(module).__name__} has no ONNX or PyTorch "
            "counterpart here; export MLP, NeuronMLP, Linear, Sequential and activation "
            "modules"
        )
    return [] if name == "identity" else [NamedActivation(name)]


def layer_steps(
    state: dict[str, np.ndarray], activations: Sequence[str | Activation], where: str
) -> list[Step]:
    """The steps of an MLP (tensor or neuron level) from its state dict and activations.

    Args:
        state: ``"layers.{k}.weight"`` (and ``"layers.{k}.bias"``) arrays.
        activations: one per layer after the input, the output's last.
        where: the network's place in the model, for the message.

    Raises:
        ExportError: an activation is a Python function without a counterpart.
    """
    steps: list[Step] = []
    for k, activation in enumerate(activations):
        bias = state.get(f"layers.{k}.bias")
        steps.append(Affine(np.asarray(state[f"layers.{k}.weight"]), bias))
        name = activation_name(activation)
        if name not in EXPORTABLE:
            raise ExportError(
                f"cannot export {where}: layer {k + 1}'s activation "
                f"{getattr(activation, '__name__', activation)!r} is a Python function "
                f"without a counterpart; use one of {', '.join(EXPORTABLE)}"
            )
        if name != "identity":
            steps.append(NamedActivation(name))
    return steps


def steps_dtype(steps: Sequence[Step]) -> np.dtype:
    """float64 if any weight is float64, else float32."""
    dtypes = {step.weight.dtype for step in steps if isinstance(step, Affine)}
    return np.dtype(np.float64) if np.dtype(np.float64) in dtypes else np.dtype(np.float32)


# --- PyTorch --------------------------------------------------------------------------


def require_torch() -> Any:
    """The ``torch`` package, or an ImportError that says how to install it."""
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


def torch_sequential(steps: Sequence[Step], torch: Any) -> Any:
    """The steps as a ``torch.nn.Sequential`` of ``Linear`` and activation modules.

    Args:
        steps: the network's steps; their dtype (float32 or float64) is kept.
        torch: the ``torch`` package (from :func:`require_torch`).
    """
    dtype = torch.float64 if steps_dtype(steps) == np.float64 else torch.float32
    layers = []
    for step in steps:
        if isinstance(step, Affine):
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


@dataclass(frozen=True)
class TorchNetwork:
    """What an ``MLP`` is built from, read off a PyTorch network.

    Attributes:
        sizes: layer widths, input first.
        activations: one canonical name per layer after the input, the output's last.
        bias: whether every layer has a bias.
        dtype: ``"float32"`` or ``"float64"``.
        state: ``"layers.{k}.weight"`` and ``"layers.{k}.bias"`` arrays of that dtype.
    """

    sizes: list[int]
    activations: list[str]
    bias: bool
    dtype: str
    state: dict[str, np.ndarray]


def read_torch(module: Any) -> TorchNetwork:
    """Read a PyTorch network of linear layers and activations (see ``MLP.from_torch``).

    Args:
        module: a ``torch.nn.Sequential`` (or a single ``torch.nn.Linear``).

    Raises:
        ExportError: the module is not such a network (the message names the part).
        ImportError: torch is not installed (``pip install chainrule[torch]``).
    """
    torch = require_torch()
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
    state = {}
    for k, layer in enumerate(linears):
        state[f"layers.{k}.weight"] = layer.weight.detach().cpu().numpy().astype(dtype)
        if layer.bias is not None:
            state[f"layers.{k}.bias"] = layer.bias.detach().cpu().numpy().astype(dtype)
    return TorchNetwork(sizes, activations, has_bias.pop(), dtype, state)


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

"""The handouts' weight names, ``w_{i,j}^{(k)}``, for both MLPs.

``"w1[1,2]"`` (or ``"w_{1,2}^{(1)}"``) is the weight from unit j = 2 of layer k = 1
to unit i = 1 of layer k + 1, units counted from 1, and j = n_k + 1 is the bias unit.
This module parses and prints those names and maps them onto the state-dict layout
that :class:`~chainrule.nn.MLP` and :class:`~chainrule.nn.NeuronMLP` share
(``"layers.{k-1}.weight"`` and ``"layers.{k-1}.bias"``); :class:`HandoutWeights`
gives both networks ``get_weights`` / ``set_weights`` through it. It imports no
other part of :mod:`chainrule.nn`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ChainruleError


class WeightNameError(ChainruleError, ValueError):
    """A handout weight name that is malformed or names no weight of this network."""


# --- the handouts' weight names ----------------------------------------------------------

_NUMBER = r"\s*(\d+)\s*"
# Each pattern captures (k, i, j) in the order given by _ORDER below.
_PATTERNS = (
    # w1[1,2]  (the form to type)
    re.compile(rf"^w{_NUMBER}\[{_NUMBER},{_NUMBER}\]$", re.IGNORECASE),
    # w_{1,2}^{(1)}  (the handouts' TeX); braces around the superscript optional
    re.compile(rf"^w_\{{{_NUMBER},{_NUMBER}\}}\^\{{?\({_NUMBER}\)\}}?$", re.IGNORECASE),
    # w^{(1)}_{1,2}  (superscript first)
    re.compile(rf"^w\^\{{?\({_NUMBER}\)\}}?_\{{{_NUMBER},{_NUMBER}\}}$", re.IGNORECASE),
)
_ORDER = ((0, 1, 2), (2, 0, 1), (0, 1, 2))


#: How chainrule writes a network's shape, in words (printed beside every shape).
SHAPE_CONVENTION = (
    "as the handouts write it: the input width counts the bias unit, "
    "hidden and output widths do not"
)


def handout_shape(sizes: Sequence[int], bias: bool) -> str:
    """A network's shape as the handouts write it: ``"3→2→1"`` for sizes [2, 2, 1].

    The handouts call the Titanic network (inputs age and male, two hidden units, one
    output) 3→2→1: its inputs are age, male *and the bias unit*. Hidden layers have
    bias units too (x_3^(2) = 1) but their width is the number of hidden units.
    Without bias units the widths are the sizes themselves.

    Args:
        sizes: the layer widths ``[n_1, ..., n_m]`` without bias units (``MLP.sizes``).
        bias: whether the layers below the output have a bias unit.
    """
    widths = [sizes[0] + (1 if bias else 0), *sizes[1:]]
    return "→".join(str(width) for width in widths)


def weight_name(k: int, i: int, j: int) -> str:
    """The canonical handout name ``"w{k}[{i},{j}]"`` (all counted from 1)."""
    return f"w{k}[{i},{j}]"


def parse_weight_name(name: str) -> tuple[int, int, int]:
    """``(k, i, j)`` from a handout weight name, counted from 1 as in the handouts.

    Args:
        name: ``"w1[1,2]"``, ``"w_{1,2}^{(1)}"`` or ``"w^{(1)}_{1,2}"`` (spaces and
            surrounding ``$`` allowed).

    Raises:
        WeightNameError: if the name has none of these forms.
    """
    if not isinstance(name, str):
        raise WeightNameError(f"a weight name is a string like 'w1[1,2]', not {name!r}")
    text = name.strip().strip("$").strip()
    for pattern, order in zip(_PATTERNS, _ORDER):
        match = pattern.match(text)
        if match:
            groups = [int(group) for group in match.groups()]
            return groups[order[0]], groups[order[1]], groups[order[2]]
    raise WeightNameError(
        f"cannot read weight name {name!r}: write w{{k}}[{{i}},{{j}}] (e.g. 'w1[1,2]') "
        "or w_{i,j}^{(k)}, the weight from unit j of layer k to unit i of layer k+1"
    )


def weight_names(sizes: Sequence[int], bias: bool) -> list[str]:
    """Every weight's canonical name, layer by layer, row by row, bias weight last."""
    return [
        weight_name(k, i, j)
        for k in range(1, len(sizes))
        for i in range(1, sizes[k] + 1)
        for j in range(1, sizes[k - 1] + 1 + int(bias))
    ]


def _valid_names(sizes: Sequence[int], bias: bool) -> str:
    names = weight_names(sizes, bias)
    if len(names) <= 40:
        return ", ".join(names)
    ranges = [f"w{k}[1..{sizes[k]},1..{sizes[k - 1] + int(bias)}]" for k in range(1, len(sizes))]
    return "; ".join(ranges)


def weight_slot(name: str, sizes: Sequence[int], bias: bool) -> tuple[str, tuple[int, ...]]:
    """Where a handout weight lives in the state dict: ``(key, index)``.

    ``"w1[2,3]"`` in a network with sizes [2, 2, 1] is ``("layers.0.bias", (1,))``
    (j = 3 = n_1 + 1 is the bias unit); ``"w1[2,1]"`` is ``("layers.0.weight", (1, 0))``.

    Raises:
        WeightNameError: for a malformed name or one outside this network; the
            message lists the valid names.
    """
    k, i, j = parse_weight_name(name)
    valid = len(sizes) > k >= 1 and 1 <= i <= sizes[k]
    if valid and 1 <= j <= sizes[k - 1]:
        return f"layers.{k - 1}.weight", (i - 1, j - 1)
    if valid and bias and j == sizes[k - 1] + 1:
        return f"layers.{k - 1}.bias", (i - 1,)
    bias_note = " (j = n_k + 1 is the bias unit)" if bias else " (this network has no bias units)"
    raise WeightNameError(
        f"{name!r} is not a weight of a network with sizes {list(sizes)}{bias_note}; "
        f"valid names: {_valid_names(sizes, bias)}"
    )


def handout_view(state: Mapping[str, Any], sizes: Sequence[int], bias: bool) -> dict[str, float]:
    """Read a state-dict-shaped mapping (weights or gradients) by handout name."""
    view = {}
    for name in weight_names(sizes, bias):
        key, index = weight_slot(name, sizes, bias)
        view[name] = float(np.asarray(state[key])[index])
    return view


def handout_update(
    state: Mapping[str, np.ndarray],
    weights: Mapping[str, Any],
    sizes: Sequence[int],
    bias: bool,
) -> dict[str, np.ndarray]:
    """The state entries that change when ``weights`` (handout name -> number) are set.

    Every name and number is checked before anything is returned, so a bad entry
    changes nothing.
    """
    if not isinstance(weights, Mapping):
        raise TypeError(
            "set_weights takes a mapping of handout names to numbers, e.g. "
            f"{{'w1[1,2]': -10.0}}, not {type(weights).__name__}"
        )
    changed: dict[str, np.ndarray] = {}
    for name, number in weights.items():
        key, index = weight_slot(name, sizes, bias)
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise TypeError(f"weight {name!r} must be a number, got {number!r}")
        if not math.isfinite(float(number)):
            raise ValueError(f"weight {name!r} must be finite, got {number!r}")
        if key not in changed:
            changed[key] = np.array(state[key], copy=True)
        changed[key][index] = float(number)
    return changed


# --- the mixin both networks use ---------------------------------------------------------


class HandoutWeights:
    """Weights by the handouts' names, for the tensor-level and the neuron-level MLP.

    ``"w1[1,2]"`` (or ``"w_{1,2}^{(1)}"``) is the weight from unit j = 2 of layer 1 to
    unit i = 1 of layer 2, counted from 1; j = n_k + 1 is the bias unit. Both networks
    share one state-dict layout, so these methods work on either through it.
    """

    sizes: list[int]
    bias: bool

    if TYPE_CHECKING:  # provided by Module, which every user of this mixin also is

        def state_dict(self) -> dict[str, np.ndarray]: ...

        def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None: ...

    def weight_names(self) -> list[str]:
        """Every weight's handout name, ``"w{k}[{i},{j}]"``, layer by layer, row by row."""
        return weight_names(self.sizes, self.bias)

    def get_weights(self) -> dict[str, float]:
        """Every weight by handout name (``"w1[1,3]"`` is hidden unit 1's bias weight)."""
        return handout_view(self.state_dict(), self.sizes, self.bias)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Set weights by handout name, e.g. ``{"w1[1,2]": -10, "w_{1,3}^{(1)}": 5}``.

        Args:
            weights: handout name -> number. ``w{k}[i,j]`` (or ``w_{i,j}^{(k)}``) is the
                weight from unit j of layer k to unit i of layer k+1, counted from 1;
                j = n_k + 1 is the bias unit. Names not given keep their values.
        """
        self.load_state_dict(
            handout_update(self.state_dict(), weights, self.sizes, self.bias), strict=False
        )

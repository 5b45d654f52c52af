"""Names for the nodes of a graph and the text of their partials: one set of rules for
diagrams (:func:`~chainrule.explanations.draw`) and path sums
(:func:`~chainrule.explanations.explain`).

Every node gets a name that is unique in its graph and describes the node, never its
value:

* a labelled node is its label (a second node with the same label is ``label#2``);
* an unlabelled leaf that is just a number (the 3 in ``3*x``) is that number: such
  constants are the one exception to uniqueness, as they carry nothing but the number;
* any other unlabelled leaf is ``t1``, ``t2``, …;
* an interior node is its forward formula when that is short and not taken (``x²``,
  ``cos(x²·y)``, ``X @ W1ᵀ``), else a made-up name ``u1``, ``u2``, … defined by its
  formula; an unlabelled output is ``f``.

Forward formulas put the inputs' own formulas into the op's symbol and then only
:func:`~chainrule.expressions.tidy` them, so no input ever disappears from a node's
formula (``0·log(1 − z)`` stays what it is, rather than becoming ``0`` like its
value). Partials are simplified further: numbers (constants and parameters) fold into
the op's symbol first (``p*a**(p - 1)`` with p = 2 is ``2·a``), then the inputs'
formulas are put in and tidied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..expressions import Expr, Name, Number, format_expr, parse, simplify, substitute, tidy
from ..graph import Node

#: Forward formulas up to this long name their node (x², x²·y); longer ones get u1, u2, ….
SHORT_FORMULA = 14
#: The names an op's symbols give its inputs, in order.
INPUT_NAMES = ("a", "b", "c")

_OPERATOR_CHARACTERS = frozenset(" +-−*/·@")
# Characters after which a transpose needs parentheses: x² transposed is (x²)ᵀ.
_SUPERSCRIPT_ENDINGS = frozenset("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺⁾")
_TRANSPOSE = "ᵀ"
# A word of a structural symbol (an input a, b, c or a parameter such as index), with a
# transpose mark if one follows it; a word followed by "(" is a function name.
_STRUCTURAL_WORD = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)(ᵀ?)(?![A-Za-z0-9_(])")
_ASCII_STRUCTURAL = str.maketrans({"ᵀ": "^T", "−": "-", "·": "*"})


def is_constant(node: Node) -> bool:
    """Whether ``node`` is an unlabelled leaf that is just a number (``2`` in ``2*x``)."""
    if node.op is not None or node.label:
        return False
    if hasattr(node, "requires_grad"):  # a Tensor: a one-element one that needs no grad
        return not getattr(node, "requires_grad", False) and np.size(node.data) == 1
    return True


def is_compound(name: str) -> bool:
    """Whether a name has an operator outside brackets (``x + 1``, not ``tanh(x + 1)``),
    so that it needs parentheses next to another operator."""
    depth = 0
    for char in name:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0 and char in _OPERATOR_CHARACTERS:
            return True
    return False


def _enclosed(name: str) -> bool:
    """Whether the whole of ``name`` sits inside one pair of parentheses."""
    if not (name.startswith("(") and name.endswith(")")):
        return False
    depth = 0
    for position, char in enumerate(name):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and position < len(name) - 1:
            return False
    return True


def transposed(name: str) -> str:
    """The transpose of the node called ``name``: ``W`` → ``Wᵀ``, ``Wᵀ`` → ``W``,
    ``x @ W`` → ``(x @ W)ᵀ``, ``x²`` → ``(x²)ᵀ``."""
    if name.endswith(_TRANSPOSE):
        inner = name[: -len(_TRANSPOSE)]
        if _enclosed(inner):
            return inner[1:-1]
        if inner and not is_compound(inner):
            return inner
    if is_compound(name) or name[-1:] in _SUPERSCRIPT_ENDINGS:
        return f"({name}){_TRANSPOSE}"
    return name + _TRANSPOSE


def parameter_text(value: Any) -> str | None:
    """An integer index or axis as people write it (``0``, ``1, 2``, ``:2``), else None."""
    parts = value if isinstance(value, tuple) else (value,)
    texts = []
    for part in parts:
        if isinstance(part, (bool, np.bool_)):
            return None
        if isinstance(part, (int, np.integer)):
            texts.append(str(int(part)))
        elif isinstance(part, slice):
            bounds = [part.start, part.stop] + ([part.step] if part.step is not None else [])
            texts.append(":".join("" if b is None else str(b) for b in bounds))
        else:
            return None
    return ", ".join(texts) if texts else None


def fill_structural(
    symbol: str, names: dict[str, str], params: dict[str, Any], *, unicode: bool = True
) -> str:
    """A structural op's descriptive symbol (``bᵀ``, ``a @ b``, ``a[index]``) with the
    input names and integer parameters written in.

    A transposed input is written with :func:`transposed` (the transpose of ``W1ᵀ`` is
    ``W1``); a compound name is parenthesised unless it stands alone (``sum(x + y)``).
    Integer parameters the symbol does not mention are added to a call
    (``sum(x, axis=0)``).

    Args:
        symbol: the op row's symbol, over the inputs ``a``, ``b``, ``c``.
        names: display name of each input by letter.
        params: the node's parameters.
        unicode: ``False`` writes ASCII (``W^T``).
    """
    words: dict[str, str] = {}
    for key, value in params.items():
        shown = parameter_text(value)
        if shown is not None:
            words[key] = shown

    def replace(match: re.Match[str]) -> str:
        word, transpose = match.group(1), match.group(2)
        if word not in names:
            return words.get(word, word) + transpose
        name = transposed(names[word]) if transpose else names[word]
        text = match.string
        alone = (match.start() == 0 and match.end() == len(text)) or (
            text[match.start() - 1 : match.start()] in ("(", "[")
            and text[match.end() : match.end() + 1] in (")", "]", ",")
        )
        return f"({name})" if is_compound(name) and not alone else name

    text = _STRUCTURAL_WORD.sub(replace, symbol)
    extras = []
    for key, value in params.items():
        if key in symbol or value is None or value is False or key == "index":
            continue
        if isinstance(value, (bool, int, np.integer)) or (
            isinstance(value, tuple) and all(isinstance(v, (int, np.integer)) for v in value)
        ):
            extras.append(f"{key}={value}")
    if extras and text.endswith(")"):
        text = text[:-1] + ", " + ", ".join(extras) + ")"
    return text if unicode else text.translate(_ASCII_STRUCTURAL)


@lru_cache(maxsize=256)
def _template(symbol: str) -> Expr:
    return parse(symbol, allow_partial_functions=True)


def _numeric_params(params: dict[str, Any]) -> dict[str, Expr]:
    numbers: dict[str, Expr] = {}
    for key, value in params.items():
        if isinstance(value, (bool, np.bool_, np.ndarray)):
            continue
        if isinstance(value, (int, float, np.number)):
            numbers[key] = Number(float(value))
    return numbers


def _identity(text: str) -> str:
    return text


class NodeNames:
    """Display names, formula trees and forward formulas of the nodes of one graph.

    Call :meth:`assign` for every node, parents first (or use :func:`name_graph`).

    Args:
        order: the graph's nodes, parents first (used to reserve the labels).
        unicode: ``False`` writes formulas in ASCII (``x**2``, ``2*x``).
        label_text: how a label is written (a diagram keeps its markup; a text
            report turns ``w_{1}`` into ``w₁``).

    Attributes:
        names: id(node) → name.
        trees: id(node) → the tree formulas use for the node (its formula, or a Name).
        formulas: id(interior node) → its forward formula in its inputs' names.
        definitions: made-up name (``u1``, ``f``) → the formula it stands for.
    """

    def __init__(
        self,
        order: Sequence[Node],
        *,
        unicode: bool = True,
        label_text: Callable[[str], str] | None = None,
    ) -> None:
        self.unicode = unicode
        self.label_text = label_text or _identity
        self.names: dict[int, str] = {}
        self.trees: dict[int, Expr] = {}
        self.formulas: dict[int, str] = {}
        self.definitions: dict[str, str] = {}
        self.taken: set[str] = {self.label_text(node.label) for node in order if node.label}
        self._counters: dict[str, int] = {}
        self._labels_used: set[str] = set()

    def fresh(self, prefix: str) -> str:
        """A new made-up name ``prefix1``, ``prefix2``, … that no node has."""
        while True:
            self._counters[prefix] = self._counters.get(prefix, 0) + 1
            name = f"{prefix}{self._counters[prefix]}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def assign(self, node: Node, *, is_output: bool = False, fixed: str | None = None) -> str:
        """Name ``node`` (its parents must be named already) and return the name.

        Args:
            node: the node.
            is_output: the graph's output (called ``f`` unless labelled).
            fixed: a name chosen by the caller (a module box's), used as it is.
        """
        key = id(node)
        if fixed is not None:
            return self._set(node, fixed)
        if node.op is None:
            if node.label:
                return self._set(node, self._label(node.label))
            if is_constant(node):
                number = np.asarray(node.data, dtype=float).reshape(-1)[0]
                constant = Number(float(number))
                self.trees[key] = constant
                self.names[key] = format_expr(constant, unicode=self.unicode)
                return self.names[key]
            return self._set(node, self.fresh("t"))
        formula, tree = self._forward(node)
        self.formulas[key] = formula
        if node.label:
            return self._set(node, self._label(node.label))
        if not is_output and len(formula) <= SHORT_FORMULA and formula not in self.taken:
            # A short formula is its own best name: x², x²·y, cos(x²·y), X @ W1ᵀ.
            self.taken.add(formula)
            self.names[key] = formula
            self.trees[key] = tree if tree is not None else Name(formula)
            return formula
        name = "f" if is_output and "f" not in self.taken else self.fresh("u")
        self.taken.add(name)
        self.definitions[name] = formula
        return self._set(node, name)

    def _label(self, label: str) -> str:
        text = self.label_text(label)
        if text not in self._labels_used:
            self._labels_used.add(text)
            return text
        # Two nodes with one label still need two names.
        number = 2
        while f"{text}#{number}" in self.taken:
            number += 1
        name = f"{text}#{number}"
        self.taken.add(name)
        return name

    def _set(self, node: Node, name: str) -> str:
        self.names[id(node)] = name
        self.trees[id(node)] = Name(name)
        return name

    def _input_names(self, node: Node) -> dict[str, str]:
        return {INPUT_NAMES[k]: self.names[id(p)] for k, p in enumerate(node.parents)}

    def _forward(self, node: Node) -> tuple[str, Expr | None]:
        op = node.op
        assert op is not None
        if not op.elementwise:
            names = self._input_names(node)
            return fill_structural(op.symbol, names, node.params, unicode=self.unicode), None
        replacements = _numeric_params(node.params)
        replacements.update({INPUT_NAMES[k]: self.trees[id(p)] for k, p in enumerate(node.parents)})
        tree = tidy(substitute(_template(op.symbol), replacements))
        return format_expr(tree, unicode=self.unicode), tree

    def partial(self, node: Node, index: int) -> str:
        """The local partial ∂node/∂(input ``index``) as text in the nodes' names."""
        op = node.op
        assert op is not None
        partial = op.partials[index]
        if partial.vjp is not None:
            names = self._input_names(node)
            return fill_structural(partial.symbol, names, node.params, unicode=self.unicode)
        # Numbers fold into the symbol (2·x, not 2·x¹); the inputs' formulas then go in
        # whole, so a partial never rewrites a node's formula into something else.
        numbers = _numeric_params(node.params)
        formulas: dict[str, Expr] = {}
        for k, parent in enumerate(node.parents):
            tree = self.trees[id(parent)]
            (numbers if isinstance(tree, Number) else formulas)[INPUT_NAMES[k]] = tree
        folded = simplify(substitute(_template(partial.symbol), numbers))
        return format_expr(tidy(substitute(folded, formulas)), unicode=self.unicode)

    def __getitem__(self, node: Node) -> str:
        return self.names[id(node)]


def name_graph(
    order: Sequence[Node],
    output: Node,
    *,
    unicode: bool = True,
    label_text: Callable[[str], str] | None = None,
) -> NodeNames:
    """Name every node of ``order`` (parents first), ``output`` as the output."""
    names = NodeNames(order, unicode=unicode, label_text=label_text)
    for node in order:
        names.assign(node, is_output=node is output)
    return names

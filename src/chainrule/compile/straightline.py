"""One Python function per instruction list: the list's calls as straight-line code.

A replayed program is a list of instructions, mostly ``functools.partial`` objects
around numpy ufuncs with their buffers bound. Calling them one by one in a loop costs a
loop step and the partial's own call per instruction; on the small networks that
compile is for, that is several percent of a step. :func:`straight_line` writes the
same calls as one function, each partial unpacked into a direct call of its function
with its bound arguments, and compiles it with :func:`compile`. Compiling costs about
as much as a couple of hundred runs save, so a :class:`Program` loops over its list
first and switches to the generated function once it has run that often.

The generated source is made only from chainrule's own instruction objects: every
value (function, buffer, constant) is a closure variable named ``v0``, ``v1``, ...;
keyword names are kept only when they are plain identifiers. No text from the user or
from the recorded step is ever part of it.
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..ops import Instruction


def _run_none() -> None:
    return None


#: Ufuncs whose positional output numpy deprecates (it reads a third argument to
#: maximum/minimum as a mistaken third input).
_OUT_BY_KEYWORD_ONLY = frozenset({np.maximum, np.minimum})


def positional(instruction: Instruction) -> Instruction:
    """The same call with its output buffer (and a reduction's axis) passed by position.

    Kernels are written with ``out=`` for reading's sake; a ufunc parses keywords more
    slowly than positions (on the small arrays compile is for, ``np.multiply(a, b, out)``
    takes two thirds of the time of ``np.multiply(a, b, out=out)``). The call, and so the
    result, is the same: a ufunc's positional arguments after its inputs are its outputs,
    and ``ufunc.reduce(array, axis, dtype, out, keepdims)`` takes its arguments in that
    order. Anything else is returned as it is.
    """
    if type(instruction) is not functools.partial or not instruction.keywords:
        return instruction
    func, args, keywords = instruction.func, instruction.args, instruction.keywords
    out = keywords.get("out")
    if type(out) is not np.ndarray:
        return instruction
    if type(func) is np.ufunc:
        if (
            func.nout == 1
            and keywords.keys() == {"out"}
            and len(args) == func.nin
            and func not in _OUT_BY_KEYWORD_ONLY
        ):
            return functools.partial(func, *args, out)
        return instruction
    if (
        type(getattr(func, "__self__", None)) is np.ufunc
        and getattr(func, "__name__", "") == "reduce"
        and len(args) == 1
        and keywords.keys() <= {"axis", "dtype", "out", "keepdims"}
    ):
        return functools.partial(
            func,
            args[0],
            keywords.get("axis", 0),
            keywords.get("dtype"),
            out,
            keywords.get("keepdims", False),
        )
    return instruction


#: Runs of an instruction list before it is turned into a generated function. Making
#: one costs about as much as 200 runs save (some 20 µs per instruction to compile, a
#: few hundred ns per instruction saved per run), so short runs (a fit of a few
#: epochs) never pay for it.
GENERATE_AFTER = 200


class Program:
    """An instruction list that runs in a loop at first and as a generated function
    (:func:`straight_line`) from its :data:`GENERATE_AFTER`-th run on.

    Args:
        instructions: callables taking no arguments, run in order on each call.
    """

    __slots__ = ("_function", "_instructions", "_left")

    def __init__(self, instructions: Sequence[Instruction]) -> None:
        self._instructions = tuple(positional(instruction) for instruction in instructions)
        self._left = GENERATE_AFTER
        self._function: Instruction | None = None

    def __call__(self) -> None:
        function = self._function
        if function is not None:
            function()
            return
        for instruction in self._instructions:
            instruction()
        self._left -= 1
        if self._left <= 0:
            self._function = straight_line(self._instructions)


#: Instructions per generated function: compiling a function with thousands of closure
#: variables takes time that grows faster than their number, so long programs are made
#: of several functions (and one more that calls them in turn).
_CHUNK = 128


def straight_line(instructions: Sequence[Instruction]) -> Instruction:
    """One function that makes the calls of ``instructions`` in order.

    Args:
        instructions: callables taking no arguments (partials are unpacked).

    Returns:
        A callable taking no arguments, with the same effect as calling each
        instruction in turn.
    """
    if not instructions:
        return _run_none
    if len(instructions) > _CHUNK:
        return straight_line(
            [
                _function_of(instructions[start : start + _CHUNK])
                for start in range(0, len(instructions), _CHUNK)
            ]
        )
    return _function_of(instructions)


def _function_of(instructions: Sequence[Instruction]) -> Instruction:
    values: list[Any] = []

    def bind(value: Any) -> str:
        values.append(value)
        return f"v{len(values) - 1}"

    lines = []
    for instruction in map(positional, instructions):
        if type(instruction) is functools.partial and all(
            name.isidentifier() and not keyword.iskeyword(name) for name in instruction.keywords
        ):
            arguments = [bind(argument) for argument in instruction.args]
            arguments += [f"{name}={bind(value)}" for name, value in instruction.keywords.items()]
            lines.append(f"        {bind(instruction.func)}({', '.join(arguments)})")
        else:
            lines.append(f"        {bind(instruction)}()")
    names = ", ".join(f"v{index}" for index in range(len(values)))
    source = "\n".join(
        [f"def make({names}):", "    def program():", *lines, "    return program", ""]
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<chainrule straight-line program>", "exec"), namespace)
    make: Callable[..., Instruction] = namespace["make"]
    return make(*values)

"""The former module of :func:`chainrule.compile`, kept so its imports still work.

Everything lives in the package :mod:`chainrule.compile` now.
"""

from __future__ import annotations

from .compile import CompiledStep as CompiledStep
from .compile import CompileError as CompileError
from .compile import CompileStats as CompileStats
from .compile import compile as compile

__all__ = ["CompileError", "CompileStats", "CompiledStep", "compile"]

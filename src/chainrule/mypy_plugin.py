"""A mypy plugin that declares the methods chainrule makes from its op rows.

``Tensor.<name>()`` and ``Value.<name>()`` exist at run time for every row of
:data:`chainrule.ops.FUNCTIONS` (see :func:`chainrule.ops.add_function_methods`), but
mypy reads only the methods written in the classes. With this plugin mypy also knows
the others, read from the same table, as ``(self) -> Tensor`` and ``(self) -> Value``::

    # pyproject.toml
    [tool.mypy]
    plugins = ["chainrule.mypy_plugin"]

Without it, such a method is still callable; mypy reports it as an unknown attribute.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import TypeInfo
from mypy.plugin import ClassDefContext, Plugin
from mypy.plugins.common import add_method_to_class
from mypy.types import Instance

#: The classes that get a method per function row.
NODE_CLASSES = ("chainrule.tensor.Tensor", "chainrule.value.Value")


def _add_function_methods(ctx: ClassDefContext) -> None:
    info: TypeInfo = ctx.cls.info
    if info.fullname not in NODE_CLASSES:
        return
    from chainrule import ops  # read when mypy reaches the class, not at plugin load

    for name in ops.FUNCTIONS:
        if name not in info.names:
            add_method_to_class(ctx.api, ctx.cls, name, args=[], return_type=Instance(info, []))


class FunctionRowsPlugin(Plugin):
    """Adds the generated unary methods to Tensor and Value (see the module docstring)."""

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        return _add_function_methods if fullname == "chainrule.graph.Node" else None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point: the plugin class, for any mypy ``version``."""
    return FunctionRowsPlugin

"""The layout's promises, read from the source: no import circles among modules or folders,
nothing below the command line imports it, no op named in the compiler."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import chainrule
from chainrule import ops

PACKAGE = Path(chainrule.__file__).parent

# Every import statement is an edge, wherever it stands: at the top, inside a function
# (a lazy import still ties the two modules together) or under ``if TYPE_CHECKING:``.
# Modules loaded by name at run time (the package's own lazy attribute table) are not
# statements and are not edges.
Edges = dict[str, dict[str, int]]


def _modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def import_graph(root: Path, package: str) -> Edges:
    """Module -> {module it imports: the line of the first such import}, within ``package``.

    Args:
        root: the package's folder.
        package: its dotted name.
    """
    modules = _modules(root, package)
    edges: Edges = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        imported: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = here[: len(here) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                # ``from package import module`` imports that module; otherwise a name.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    imported.setdefault(target, node.lineno)
        edges[name] = imported
    return edges


def _strongly_connected(edges: Edges) -> list[list[str]]:
    """The groups of modules that reach each other (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def _one_circle(edges: Edges, group: list[str]) -> str:
    """A shortest circle through the group's first module, with the line of each import."""
    start, members = group[0], set(group)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in edges[node]:
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                path.reverse()
                hops = zip(path, [*path[1:], start])
                return " -> ".join(f"{a} (line {edges[a][b]})" for a, b in hops) + f" -> {start}"
            if successor in members and successor not in came_from:
                came_from[successor] = node
                queue.append(successor)
    raise AssertionError(f"{group} is not a circle")


def import_circles(edges: Edges) -> list[str]:
    """One line per group of modules that import each other: its members and one circle."""
    return [
        f"{', '.join(group)}: {_one_circle(edges, group)}" for group in _strongly_connected(edges)
    ]


def test_import_graph_sees_imports_in_functions_and_under_type_checking(tmp_path: Path) -> None:
    """A circle closed only by a lazy import or a TYPE_CHECKING import is still found."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "low.py").write_text("def f():\n    from .sub import high\n")
    (root / "sub" / "high.py").write_text("from ..low import f\n")
    (root / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import other\n"
    )
    (root / "other.py").write_text("import pkg.typed\n")
    edges = import_graph(root, "pkg")
    assert edges["pkg.low"] == {"pkg.sub.high": 2}
    assert import_circles(edges) == [
        "pkg.low, pkg.sub.high: pkg.low (line 2) -> pkg.sub.high (line 1) -> pkg.low",
        "pkg.other, pkg.typed: pkg.other (line 1) -> pkg.typed (line 3) -> pkg.other",
    ]


def test_chainrule_modules_import_without_a_circle() -> None:
    """No two modules of chainrule import each other, directly or through others."""
    edges = import_graph(PACKAGE, "chainrule")
    assert "chainrule.nn.modules" in edges and edges["chainrule.graph"]  # the tree was read
    assert import_circles(edges) == []


# --- folders: the command line on top, nothing below it reaches up --------------------------

#: The only modules outside ``chainrule.cli`` that may import it: ``python -m chainrule``.
COMMAND_LINE = "chainrule.cli"
COMMAND_LINE_ENTRIES = {"chainrule.__main__"}


def folder_of(module: str, package: str) -> str:
    """The folder a module lives in, as the layout counts it: a subpackage, or the module.

    ``chainrule.cli.train`` -> ``chainrule.cli``; ``chainrule.tabular`` -> itself.
    """
    depth = package.count(".") + 2
    return ".".join(module.split(".")[:depth])


def folder_graph(edges: Edges, package: str) -> Edges:
    """Folder -> {folder it imports: the line of the first such import}, between folders."""
    folders: Edges = {}
    for module, imported in edges.items():
        here = folder_of(module, package)
        crossing = folders.setdefault(here, {})
        for target, line in imported.items():
            there = folder_of(target, package)
            if there != here:
                crossing.setdefault(there, line)
    return folders


def imports_between(edges: Edges, package: str, group: list[str]) -> list[str]:
    """Every import from one folder of ``group`` into another, as ``module (line n) -> module``."""
    members = set(group)
    return [
        f"{module} (line {line}) -> {target}"
        for module, imported in edges.items()
        for target, line in imported.items()
        if folder_of(module, package) in members
        and folder_of(target, package) in members
        and folder_of(target, package) != folder_of(module, package)
    ]


def importers_of(edges: Edges, package: str, folder: str, allowed: set[str]) -> list[str]:
    """The modules outside ``folder`` (and not ``allowed``) that import it, with the line."""
    return [
        f"{module} (line {line}) -> {target}"
        for module, imported in edges.items()
        if folder_of(module, package) != folder and module not in allowed
        for target, line in imported.items()
        if folder_of(target, package) == folder
    ]


def test_folder_checks_find_a_loop_between_folders_and_an_import_of_the_command_line(
    tmp_path: Path,
) -> None:
    """A loop of folders without a module circle, and a library module importing cli, are found."""
    root = tmp_path / "pkg"
    for folder in ("cli", "data", "model"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "__main__.py").write_text("from .cli.main import main\n")
    (root / "cli" / "main.py").write_text("from ..data import reader\n")
    (root / "cli" / "helpers.py").write_text("HELP = 1\n")
    # data.reader -> model.fit -> data.columns: no module circle, but a folder loop.
    (root / "data" / "reader.py").write_text("from ..model import fit\n")
    (root / "data" / "columns.py").write_text("X = 1\n")
    (root / "model" / "fit.py").write_text("import numpy\nfrom ..data import columns\n")
    (root / "tabular.py").write_text("\n\nfrom .cli.helpers import HELP\n")
    edges = import_graph(root, "pkg")
    assert import_circles(edges) == []
    folders = folder_graph(edges, "pkg")
    assert folders["pkg.data"] == {"pkg.model": 1}
    assert import_circles(folders) == [
        "pkg.data, pkg.model: pkg.data (line 1) -> pkg.model (line 2) -> pkg.data"
    ]
    assert imports_between(edges, "pkg", ["pkg.data", "pkg.model"]) == [
        "pkg.data.reader (line 1) -> pkg.model.fit",
        "pkg.model.fit (line 2) -> pkg.data.columns",
    ]
    assert importers_of(edges, "pkg", "pkg.cli", {"pkg.__main__"}) == [
        "pkg.tabular (line 3) -> pkg.cli.helpers"
    ]


def test_only_the_command_line_imports_chainrule_cli() -> None:
    """Only ``python -m chainrule`` imports chainrule.cli from outside: the library sits below."""
    edges = import_graph(PACKAGE, "chainrule")
    assert edges["chainrule.__main__"] == {"chainrule.cli.main": 5}  # the check can see one
    assert importers_of(edges, "chainrule", COMMAND_LINE, COMMAND_LINE_ENTRIES) == []


def test_chainrule_folders_import_without_a_loop() -> None:
    """No two folders of chainrule (subpackages or top-level modules) import each other."""
    edges = import_graph(PACKAGE, "chainrule")
    folders = folder_graph(edges, "chainrule")
    assert "chainrule.tables" in folders["chainrule.cli"]  # the tree was read
    circles = import_circles(folders)
    crossings = [
        imports_between(edges, "chainrule", group) for group in _strongly_connected(folders)
    ]
    assert circles == [], crossings


# --- the compiler reads op rows and names no op ------------------------------------------

#: The module-level names of op rows (``ADD``) and the ops' own names (``"add"``).
OP_CONSTANTS = {name for name, value in vars(ops).items() if isinstance(value, ops.Op)}
OP_NAMES = {op.name for op in ops.OPS.values()} | set(ops.OPS) | set(ops.FUNCTIONS)


def op_references(source: str) -> list[str]:
    """Where ``source`` names a particular op: a row by its constant or an op by its name.

    Docstrings are prose, not references, and are skipped.
    """
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in OP_CONSTANTS:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in OP_CONSTANTS:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.alias) and node.name in OP_CONSTANTS:
            found.append(f"line {node.lineno}: import {node.name}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in OP_NAMES
            and id(node) not in docstrings
        ):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_op_references_finds_rows_and_names() -> None:
    """A row constant, an imported row and an op's name in a string are all found."""
    source = (
        "from ..ops import MATMUL\n"
        "def plan(op):\n"
        '    """How sigmoid is planned: prose."""\n'
        "    if op is ops.SIGMOID or op.name == 'tanh':\n"
        "        return MATMUL\n"
    )
    assert op_references(source) == [
        "line 1: import MATMUL",
        "line 5: MATMUL",
        "line 4: .SIGMOID",
        "line 4: 'tanh'",
    ]


def test_compiler_names_no_op() -> None:
    """chainrule.compile reads every op from its row: no row constant, no op name in it."""
    assert {"ADD", "MATMUL", "SIGMOID"} <= OP_CONSTANTS and {"add", "sigmoid"} <= OP_NAMES
    files = [*sorted((PACKAGE / "compile").glob("*.py")), *PACKAGE.glob("compiler.py")]
    assert len(files) > 2
    found = {
        f"{path.relative_to(PACKAGE)} {reference}"
        for path in files
        for reference in op_references(path.read_text(encoding="utf-8"))
    }
    assert not found, sorted(found)

"""The import rules of `mintlog/`, read from the source (ast, nothing imported, no service):

- no import cycle between modules of `mintlog/`;
- adapters are imported only by the shell wing (`mintlog.launch`, whose `bootstrap` is the composition root)
  and by adapters themselves;
- a role never imports another role (`mintlog.roles.X` → `mintlog.roles.Y`); the role kit (`mintlog.roles.kit`)
  is shared by all and imports no role;
- the shell wing is imported only by the command line (`mintlog.cli`).

Every import counts: at module level, inside functions (lazy) and under `TYPE_CHECKING`. Each rule is also
shown to catch a small tree that breaks it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mintlog"

ADAPTERS = "mintlog.adapters"
SHELL = "mintlog.launch"
ROLES = "mintlog.roles"
ROLE_KIT = "kit"
SHELL_IMPORTERS = frozenset({"mintlog.cli"})


@dataclass(frozen=True, slots=True)
class Import:
    """`importer` imports `imported` (both modules of the tree) at `line` of `path` (relative to the tree's
    parent: `mintlog/cli.py`)."""

    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} ({self.path}:{self.line})"


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name (a package by its own name)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        anchor = importer.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    yield base
    yield from (f"{base}.{alias.name}" for alias in node.names)


def imports(root: Path) -> list[Import]:
    """Every import between modules of the package at `root` (a `from a import b` names `a.b` when `b` is a
    module, else `a`)."""
    modules = module_names(root)
    found: list[Import] = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = [t for t in _targets(node, importer, path.name == "__init__.py") if t in modules]
            # `from a import b` with `b` a module imports `b`; `a` itself only when nothing more precise is named.
            precise = [t for t in targets if t != (getattr(node, "module", None) or "")] or targets
            for imported in dict.fromkeys(precise):
                if imported != importer:
                    found.append(Import(importer, imported, path.relative_to(root.parent), node.lineno))
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def cycles(edges: list[Import]) -> list[list[str]]:
    """The import cycles: every strongly connected group of two or more modules (Tarjan), sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so that a deep import chain cannot exhaust the recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def adapter_imports_outside_the_shell(edges: list[Import]) -> list[Import]:
    """Imports of an adapter by a module outside `mintlog.launch` and `mintlog.adapters`."""
    return [
        edge
        for edge in edges
        if _within(edge.imported, ADAPTERS)
        and not _within(edge.importer, ADAPTERS)
        and not _within(edge.importer, SHELL)
    ]


def _role(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and _within(module, ROLES) else None


def role_to_role_imports(edges: list[Import]) -> list[Import]:
    """Imports of one role's module by another role's. Every role may import the role kit; the kit imports no
    role."""
    found: list[Import] = []
    for edge in edges:
        importer, imported = _role(edge.importer), _role(edge.imported)
        if importer and imported and importer != imported and imported != ROLE_KIT:
            found.append(edge)
    return found


def shell_imports_from_outside(edges: list[Import]) -> list[Import]:
    """Imports of the shell wing by modules outside it, but the command line."""
    return [
        edge
        for edge in edges
        if _within(edge.imported, SHELL) and not _within(edge.importer, SHELL) and edge.importer not in SHELL_IMPORTERS
    ]


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return imports(PACKAGE)


def test_no_import_cycle_between_modules(edges: list[Import]) -> None:
    assert cycles(edges) == []


def test_only_the_shell_wing_imports_adapters(edges: list[Import]) -> None:
    assert [str(edge) for edge in adapter_imports_outside_the_shell(edges)] == []


def test_no_role_imports_another_role(edges: list[Import]) -> None:
    assert [str(edge) for edge in role_to_role_imports(edges)] == []


def test_only_the_command_line_imports_the_shell_wing(edges: list[Import]) -> None:
    assert [str(edge) for edge in shell_imports_from_outside(edges)] == []


def test_the_rules_read_the_real_tree(edges: list[Import]) -> None:
    # Guards against a parser that finds nothing, which would pass every rule above.
    found = {(edge.importer, edge.imported) for edge in edges}
    assert ("mintlog.launch.bootstrap", "mintlog.runtime") in found
    assert ("mintlog.cli", "mintlog.launch.commands") in found  # a lazy import, inside a function
    assert any(edge.importer == "mintlog.launch.registry" and edge.imported == "mintlog.runtime" for edge in edges)


# --- each rule catches a tree that breaks it ------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "mintlog"
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        for parent in path.relative_to(package).parents:
            (package / parent / "__init__.py").touch()
    return package


def test_a_lazy_import_cycle_is_found(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "cli.py": "def main():\n    from mintlog.http import workers\n",
            "http/workers.py": "from mintlog.cli import main\n",
            "other.py": "import mintlog.cli\n",
        },
    )
    assert cycles(imports(package)) == [["mintlog.cli", "mintlog.http.workers"]]


def test_a_relative_import_cycle_is_found(tmp_path: Path) -> None:
    package = _tree(tmp_path, {"a/x.py": "from .y import f\n", "a/y.py": "from . import x\n"})
    assert cycles(imports(package)) == [["mintlog.a.x", "mintlog.a.y"]]


def test_an_adapter_imported_by_a_role_is_found(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "adapters/bus/embedded.py": "from mintlog.adapters.bus import nats\n",
            "adapters/bus/nats.py": "",
            "roles/pipeline/child.py": "if True:\n    from mintlog.adapters.bus.embedded import Bus\n",
            "launch/bootstrap.py": "from mintlog.adapters.bus.nats import Bus\n",
        },
    )
    assert [str(edge) for edge in adapter_imports_outside_the_shell(imports(package))] == [
        "mintlog.roles.pipeline.child -> mintlog.adapters.bus.embedded (mintlog/roles/pipeline/child.py:2)"
    ]


def test_a_role_importing_another_role_is_found(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "roles/kit/base.py": "",
            "roles/kit/scheduler.py": "from mintlog.roles.alert import rules\n",
            "roles/alert/rules.py": "",
            "roles/pipeline/archive.py": "from mintlog.roles.kit.base import Service\n",
            "roles/api/archive.py": "from mintlog.roles.kit import base\nfrom mintlog.roles.pipeline import archive\n",
            "roles/api/role.py": "from mintlog.roles.api.archive import f\n",
        },
    )
    assert [str(edge) for edge in role_to_role_imports(imports(package))] == [
        "mintlog.roles.api.archive -> mintlog.roles.pipeline.archive (mintlog/roles/api/archive.py:2)",
        "mintlog.roles.kit.scheduler -> mintlog.roles.alert.rules (mintlog/roles/kit/scheduler.py:1)",
    ]


def test_the_shell_wing_imported_from_outside_is_found(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "launch/bootstrap.py": "",
            "launch/process.py": "from mintlog.launch.bootstrap import bootstrap\n",
            "cli.py": "def main():\n    from mintlog.launch import process\n",
            "roles/api/role.py": "from mintlog.launch.bootstrap import bootstrap\n",
        },
    )
    assert [str(edge) for edge in shell_imports_from_outside(imports(package))] == [
        "mintlog.roles.api.role -> mintlog.launch.bootstrap (mintlog/roles/api/role.py:1)"
    ]

"""Import rules between the packages: `adapters/` builds on `bot/`, never the other way round.

The one exception is `bot/cli.py`, the composition root of the `carebot` command (it wires the
shipped adapters into a running bot); its docstring says why. The AST is read, not imported, so a
lazy import inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOTS = {"bot/cli.py"}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth of its syntax tree."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def package_imports(package: str) -> dict[str, set[str]]:
    """For each module file under `package/`, the top-level packages it imports."""
    return {str(path.relative_to(ROOT)): {name.split(".")[0] for name in imported_modules(path)}
            for path in sorted((ROOT / package).rglob("*.py"))}


def test_bot_never_imports_adapters() -> None:
    offenders = sorted(module for module, tops in package_imports("bot").items()
                       if "adapters" in tops and module not in COMPOSITION_ROOTS)
    assert offenders == [], f"bot/ modules importing adapters/: {offenders}"


def test_composition_root_says_why() -> None:
    for module in COMPOSITION_ROOTS:
        doc = ast.get_docstring(ast.parse((ROOT / module).read_text(encoding="utf-8"))) or ""
        assert "composition root" in doc, f"{module} imports adapters/ but its docstring does not say why"


def test_adapter_tables_register_through_the_hook(sqlite_url: str) -> None:
    from sqlmodel import SQLModel

    from bot.store.migrate import register_tables

    assert "adapters.webchat.models" in register_tables()
    migrated = set(sa.inspect(sa.create_engine(sqlite_url)).get_table_names()) - {"alembic_version"}
    assert migrated == set(SQLModel.metadata.tables)


def module_graph() -> dict[str, set[str]]:
    """Module → the modules of bot/ and adapters/ it imports (`from a import b` counts a.b when
    that is a module)."""
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
               for package in ("bot", "adapters") for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            edges.update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_no_import_cycle_between_packages() -> None:
    crossing = [sorted(c) for c in cycles(module_graph())
                if {m.split(".")[0] for m in c} == {"bot", "adapters"}
                or len({".".join(m.split(".")[:2]) for m in c if m.startswith("adapters.")}) > 1]
    assert crossing == [], f"import cycles across bot/ and adapters/ or between adapters: {crossing}"

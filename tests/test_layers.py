# SPDX-License-Identifier: GPL-3.0-or-later
"""The import graph of Brenda's own modules, imports inside functions included: it has no cycle,
and each package imports only the packages the README's "How it fits together" allows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "brenda_node", "brenda_addon")

BELOW_JOBS = {"shared.core", "shared.aws", "shared.outputs", "shared.project", "shared.tasks"}
MAY_IMPORT: dict[str, set[str]] = {
    "shared.core": set(),
    "shared.aws": {"shared.core"},
    "shared.outputs": {"shared.core", "shared.aws"},
    "shared.project": {"shared.core", "shared.aws"},
    "shared.tasks": {"shared.core", "shared.aws", "shared.outputs"},
    "shared.jobs": BELOW_JOBS,
    "shared.farm": BELOW_JOBS | {"shared.jobs"},
    "shared.services": BELOW_JOBS | {"shared.jobs", "shared.farm"},
    "shared.workstation": {"shared.core", "shared.aws", "shared.farm"},
    "brenda_node": BELOW_JOBS | {"shared.jobs", "shared.farm"},
    "brenda_addon": BELOW_JOBS | {"shared.jobs", "shared.farm", "shared.services"},
    "shared.cli": BELOW_JOBS
    | {"shared.jobs", "shared.farm", "shared.services", "shared.workstation", "brenda_node"},
}
"""Package: the packages it may import. Every package may import ``shared`` itself (its
``__version__``) and its own modules."""


def module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "shared" and len(parts) > 1 else parts[0]


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module: the project's modules it imports, anywhere in its code."""
    files = {
        module_name(path, root): path for top in packages for path in (root / top).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names if alias.name in files)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                base = base.removeprefix("brenda_addon.") if ".shared" in base else base
                for alias in node.names:
                    if f"{base}.{alias.name}" in files:
                        imported.add(f"{base}.{alias.name}")
                    elif base in files:
                        imported.add(base)
        imported.discard(module)
        graph[module] = imported
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            part = []
            while True:
                other = stack.pop()
                part.append(other)
                if other == module:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 60 and "shared.farm.fleet" in graph["shared.farm.autoscale"]
    assert cycles(graph) == []


def test_a_cycle_hidden_inside_a_function_is_found(tmp_path: Path) -> None:
    package = tmp_path / "farm"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fleet.py").write_text("from .jobs import Job\n")
    (package / "jobs.py").write_text("def resize():\n    from . import fleet\n")
    (package / "costs.py").write_text("from farm.jobs import Job\n")
    graph = import_graph(tmp_path, ("farm",))
    assert graph["farm.costs"] == {"farm.jobs"}
    assert cycles(graph) == [["farm.fleet", "farm.jobs"]]


def test_every_package_imports_only_what_the_rule_allows() -> None:
    graph = import_graph()
    assert {package_of(module) for module in graph} - {"shared"} == set(MAY_IMPORT)
    broken = sorted(
        f"{module} imports {other}"
        for module, imported in graph.items()
        for other in imported
        if package_of(other) not in {"shared", package_of(module)}
        and package_of(module) != "shared"
        and package_of(other) not in MAY_IMPORT[package_of(module)]
    )
    assert broken == []

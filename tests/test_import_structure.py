"""The dependency rules of the code base, read from the sources: they point one way, with no cycles.

``actors → channels`` and ``actors → brain``; ``channels`` imports no numpy, ``brain``
no asyncio or anyio; no module of ``actors`` but its entry point imports the CLI; and
no module imports itself again through others — counting the imports made inside
functions too, since those run as soon as the function does.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "brain", "channels")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs, anywhere in it (``from a import b`` counts ``a.b`` too).

    Imports under ``if TYPE_CHECKING:`` never run: they name types for the checker only.
    """
    found = set()
    for node in _running(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _running(tree: ast.AST):
    """The nodes of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(tree):
        test = child.test if isinstance(child, ast.If) else None
        if isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING"):
            yield from (node for other in child.orelse for node in _running_and_self(other))
            continue
        yield child
        yield from _running(child)


def _running_and_self(node: ast.AST):
    yield node
    yield from _running(node)


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _importing(prefix: str, imported: str) -> list[str]:
    """Modules under ``prefix`` that import ``imported`` or one of its submodules."""
    return sorted(
        name
        for name, found in IMPORTS.items()
        if name.split(".")[0] == prefix and any(m == imported or m.startswith(imported + ".") for m in found)
    )


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("channels", "numpy"), ("channels", "brain"), ("channels", "actors"), ("brain", "asyncio"),
     ("brain", "anyio"), ("brain", "actors"), ("brain", "channels")],
)  # fmt: skip
def test_dependencies_point_one_way(package: str, forbidden: str) -> None:
    assert _importing(package, forbidden) == []


def test_no_module_of_actors_imports_the_command_line() -> None:
    entry_points = {"actors.cli", "actors.__main__"}
    assert [name for name in _importing("actors", "actors.cli") if name not in entry_points] == []


def test_no_import_cycles() -> None:
    graph = {name: {m for m in found if m in MODULES and m != name} for name, found in IMPORTS.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' → '.join(cycle.args[1])}")


def test_the_rules_can_fail() -> None:
    """The reader sees what it is meant to: the CLI's own imports, and a cycle where one is built."""
    assert "actors.options" in IMPORTS["actors.cli"]
    graph = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(graph).static_order())


def test_every_study_finds_the_fetched_data_from_its_own_folder() -> None:
    """The benches' default data folder is the project's data/mnist wherever their module lives."""
    from actors.study import kernel_bench, modern_bench

    for module in (kernel_bench, modern_bench):
        assert module.DEFAULT_DATA == REPO / "data" / "mnist", module.__name__

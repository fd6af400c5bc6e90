"""The project's module structure: no import circles, no module reaching into another's private names,
a docstring on every module.

A learner reads refbroker (or the suite, or interop) one module at a time: each module's docstring
says what it owns, its imports say what it builds on, and a circle (a imports b, b imports a, however
far round) means neither can be understood first. A name starting with "_" is a module's own business;
another module that uses it depends on a detail that may change without notice. All of this is
checked from the source text with `ast`, every import counted (also those inside functions or under
TYPE_CHECKING, so moving an import into a function does not hide a circle):

    pytest tests/structure -q
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: packages whose structure is checked
PACKAGES = ("refbroker", "pcap", "reports", "bench", "conformance", "interop")
#: private attributes of another project's objects that have no public equivalent, allowed in one module
#: each: (module, attribute) -> why. Everything else private stays its owner's business.
FOREIGN_PRIVATE_ALLOWED = {
    ("conformance.plugin", "_fixtureinfo"):
        "pytest keeps which fixture definition a test's fixture name resolves to only on the test item",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(imported project module, names taken from it, line) for every import in the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:  # `from package import module`
                    found.append((f"{base}.{alias.name}", [], node.lineno))
                elif base in known:
                    found.append((base, [alias.name], node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: {target for target, _, _ in _imports(module, path, known) if target != module}
            for module, path in known.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_the_graph_is_read():
    graph = _graph()
    assert "refbroker.core.broker" in graph["refbroker.core"]
    assert "refbroker.core.router" in graph["refbroker.core.context"]
    assert "conformance.errors" in graph["conformance.client"]
    assert "conformance.targets" in graph["conformance.deviations"]  # an import under TYPE_CHECKING counts


def test_no_import_circles():
    circles = _circles(_graph())
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def _is_super_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _private_uses(module: str, path: Path, known: dict[str, Path]) -> list[str]:
    uses = []
    for target, names, line in _imports(module, path, known):
        uses += [f"{path.relative_to(ROOT)}:{line} imports {name} from {target}"
                 for name in names if name.startswith("_") and not name.startswith("__")]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Name) and node.value.id in ("os", "sys"))
                and not _is_super_call(node.value)  # a subclass extending its base's hook
                and (module, node.attr) not in FOREIGN_PRIVATE_ALLOWED):
            uses.append(f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}")
    return uses


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_private_names_of_other_modules(module):
    known = _modules()
    uses = _private_uses(module, known[module], known)
    assert not uses, "\n".join(uses)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_says_what_it_owns(module):
    """A module docstring: the first thing a reader of the module sees says what it is for."""
    path = _modules()[module]
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring and docstring.strip(), f"{path.relative_to(ROOT)} has no module docstring"

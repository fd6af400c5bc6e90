"""Every expectation of a conformance test that names several statements says which one it enforces.

A failure turns red only the statement whose check failed (conformance/checks.py): `check(id, ...)`,
`fail_statement(id, ...)`, a `with statement(id):` block, or -- for a failure that names none -- the
test's first statement, which by convention is the one its flow serves. A bare `assert` in a test with
several statements would charge the first statement with whatever it tests, so this file finds them by
reading the suite's source: in such tests every `assert` sits inside a `statement` block, and helper
functions of the suite use `check` or raise failures that quote their statement instead of `assert`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conformance.catalogue import normalise_id

SUITE = Path(__file__).resolve().parents[2] / "conformance" / "tests"
VERSION_NAMES = {"3.1": "3.1", "3.1.1": "3.1.1", "5.0": "5.0"}


def _constant_names(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "string" assignments (V5 = "5.0")."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = node.value.value
    return names


def _statements(function: ast.FunctionDef | ast.ClassDef, names: dict[str, str]) -> dict[str, list[str]]:
    """{version: [ids]} from the function's @pytest.mark.spec decorators (as the plugin reads them)."""
    per_version: dict[str, list[str]] = {}
    for decorator in function.decorator_list:
        if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "spec"):
            continue
        ids = [arg.value for arg in decorator.args if isinstance(arg, ast.Constant)]
        versions = []
        for keyword in decorator.keywords:
            if keyword.arg == "version":
                value = keyword.value
                versions.append(value.value if isinstance(value, ast.Constant) else names.get(getattr(value, "id", "")))
        for version in versions or list(VERSION_NAMES):
            for statement in ids:
                try:
                    per_version.setdefault(version, []).append(normalise_id(version, statement))
                except KeyError:
                    continue
    return per_version


def _bare_asserts(node: ast.AST, inside_block: bool = False) -> list[int]:
    """Line numbers of `assert` statements not inside a `with statement(...)` block."""
    found = []
    if isinstance(node, ast.Assert) and not inside_block:
        found.append(node.lineno)
    if isinstance(node, ast.With) and any(
            isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id", None) == "statement"
            for item in node.items):
        inside_block = True
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child is not node:
            continue  # nested functions are looked at on their own
        found += _bare_asserts(child, inside_block)
    return found


def _suite_functions():
    for path in sorted(SUITE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = _constant_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node, names


def test_multi_statement_tests_attribute_every_assert():
    offenders = []
    for path, function, names in _suite_functions():
        if not function.name.startswith("test"):
            continue
        per_version = _statements(function, names)
        if not per_version or max(len(ids) for ids in per_version.values()) < 2:
            continue
        for line in _bare_asserts(function):
            offenders.append(f"{path.name}:{line} ({function.name})")
    assert not offenders, ("a bare assert in a test that names several statements charges its first statement "
                           "whatever it checks; use check(id, ...) or a `with statement(id):` block:\n  "
                           + "\n  ".join(offenders))


def test_suite_helpers_do_not_assert():
    offenders = []
    for path, function, _ in _suite_functions():
        if function.name.startswith("test"):
            continue
        for line in _bare_asserts(function):
            offenders.append(f"{path.name}:{line} ({function.name})")
    assert not offenders, ("helpers of the suite are shared by tests of different statements: use check(id, ...) "
                           "or a ConformanceFailure whose message quotes the statement id in brackets:\n  "
                           + "\n  ".join(offenders))


@pytest.mark.parametrize("source, expected", [
    ("def test_x():\n    assert 1\n", [2]),
    ("def test_x():\n    with statement('MQTT-3.3.1-1'):\n        assert 1\n", []),
    ("def test_x():\n    with open('f'):\n        assert 1\n", [3]),
])
def test_bare_assert_finder(source, expected):
    assert _bare_asserts(ast.parse(source).body[0]) == expected

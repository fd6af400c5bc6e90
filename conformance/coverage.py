"""Which normative statements the suite checks: read the `@pytest.mark.spec(...)` tags of the test
modules (statically, without running anything) and set them against the catalogue.

A server-side statement (actor `server` or `both`) is *tested* when at least one test names it,
*not checkable* when the catalogue gives a reason why no black-box test can make it fail, and
*untested* otherwise. Project-defined ids (PE-…, MP-…, and V31-… for MQTT 3.1, whose specification
numbers no statement) are counted apart from the numbered ones.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import VERSIONS, Statement, load_catalogue, normalise_id

TESTS_DIR = Path(__file__).parent / "tests"


@dataclass
class SpecTag:
    ids: tuple[str, ...]
    version: str | None  # None: the test runs for both versions
    test: str            # "module.py::function"


@dataclass
class Coverage:
    version: str
    tested: dict[str, list[str]] = field(default_factory=dict)  # statement id -> tests naming it
    not_checkable: list[Statement] = field(default_factory=list)
    untested: list[Statement] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    unknown_ids: list[tuple[str, str]] = field(default_factory=list)  # (id, test)


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_spec_marker(func: ast.AST) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "spec"
    return isinstance(func, ast.Name) and func.id == "spec"


def scan_tags(tests_dir: Path = TESTS_DIR) -> list[SpecTag]:
    """Every spec tag in the test modules below `tests_dir`, with the test it decorates."""
    tags = []
    for path in sorted(tests_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and _is_spec_marker(decorator.func):
                    ids = tuple(s for s in map(_string, decorator.args) if s)
                    version = next((_string(k.value) for k in decorator.keywords if k.arg == "version"), None)
                    tags.append(SpecTag(ids, version, f"{path.relative_to(tests_dir)}::{node.name}"))
    return tags


def compute(tags: Iterable[SpecTag], versions: Iterable[str] = VERSIONS) -> dict[str, Coverage]:
    catalogue = load_catalogue()
    result = {version: Coverage(version) for version in versions}
    for tag in tags:
        for version, coverage in result.items():
            if tag.version is not None and normalise_version(tag.version) != version:
                continue
            for statement_id in tag.ids:
                try:
                    key = normalise_id(version, statement_id)
                except KeyError:
                    if tag.version is not None:
                        coverage.unknown_ids.append((statement_id, tag.test))
                    continue
                coverage.tested.setdefault(key, []).append(tag.test)
    for (version, _), statement in sorted(catalogue.items()):
        if version not in result or statement.actor not in ("server", "both"):
            continue
        coverage = result[version]
        coverage.statements.append(statement)
        if statement.id in coverage.tested:
            continue
        (coverage.untested if statement.checkable else coverage.not_checkable).append(statement)
    return result


def normalise_version(text: str) -> str:
    return {"3": "3.1", "4": "3.1.1", "5": "5.0", "3.1": "3.1", "3.1.1": "3.1.1", "5.0": "5.0"}.get(str(text), str(text))


def _numbered(statement: Statement) -> bool:
    return statement.numbered


def format_report(coverage: Coverage, show_missing: bool = False) -> str:
    """A plain-text table of the coverage of one version, per packet or area."""
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # total, tested, not checkable, untested
    for statement in coverage.statements:
        for key in (statement.packet, "ALL"):
            row = rows[key if _numbered(statement) else f"{key} (own ids)"]
            row[0] += 1
            if statement.id in coverage.tested:
                row[1] += 1
            elif statement.checkable:
                row[3] += 1
            else:
                row[2] += 1
    lines = [f"MQTT {coverage.version}: server and both statements",
             f"  {'packet / area':<26}{'total':>7}{'tested':>8}{'n/check':>9}{'untested':>10}"]
    order = sorted(k for k in rows if not k.startswith("ALL"))
    for key in order + ["ALL", "ALL (own ids)"]:
        if key in rows:
            total, tested, not_checkable, untested = rows[key]
            label = {"ALL": "all numbered", "ALL (own ids)": "all own ids (PE/MP/V31)"}.get(key, key)
            lines.append(f"  {label:<26}{total:>7}{tested:>8}{not_checkable:>9}{untested:>10}")
    for kind, keep in (("numbered", _numbered), ("own-id", lambda s: not _numbered(s))):
        checkable = [s for s in coverage.statements if keep(s) and (s.checkable or s.id in coverage.tested)]
        done = sum(1 for s in checkable if s.id in coverage.tested)
        if checkable:
            lines.append(f"  {kind} checkable statements with a test: {done}/{len(checkable)} "
                         f"({100 * done / len(checkable):.0f} %)")
    for statement_id, test in coverage.unknown_ids:
        lines.append(f"  ! {test} names {statement_id}, which is not a {coverage.version} statement")
    if show_missing:
        lines.append("  untested:")
        lines.extend(f"    {s.id:<18} {s.packet:<12} {s.summary}" for s in coverage.untested)
    return "\n".join(lines)

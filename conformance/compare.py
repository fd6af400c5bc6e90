"""Do identical runs give identical verdicts? `compare_runs` reads results files of the same suite against the
same broker and lists every test node and every (test, statement) whose verdict differs between them.

    python -m conformance compare results/run1.json results/run2.json ...

A verdict is the test's outcome with its known deviation ("fail#13"), and per statement the entry of
`statement_outcomes`. A node missing from one of the files counts as a difference too ("absent").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Comparison", "compare_runs", "format_comparison"]

ABSENT = "absent"


@dataclass
class Comparison:
    files: list[str]
    nodes: int = 0
    statements: int = 0
    #: nodeid -> verdict per file, for the nodes whose verdicts differ
    node_flips: dict[str, list[str]] = field(default_factory=dict)
    #: (nodeid, statement) -> verdict per file, for the statements whose verdicts differ
    statement_flips: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.node_flips and not self.statement_flips


def _verdicts(path: Path) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        tests = document["tests"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a conformance results file ({exc})") from None
    nodes, statements = {}, {}
    for test in tests:
        number = test.get("known_deviation")
        nodes[test["nodeid"]] = test["outcome"] + (f"#{number}" if number else "")
        for statement, verdict in (test.get("statement_outcomes") or {}).items():
            statements[(test["nodeid"], statement)] = verdict
    return nodes, statements


def compare_runs(paths: list[str | Path]) -> Comparison:
    """Compare the verdicts of two or more results files (ValueError for a file that is not one)."""
    runs = [_verdicts(Path(p)) for p in paths]
    result = Comparison([str(p) for p in paths])
    all_nodes = sorted({n for nodes, _ in runs for n in nodes})
    all_statements = sorted({s for _, statements in runs for s in statements})
    result.nodes, result.statements = len(all_nodes), len(all_statements)
    for node in all_nodes:
        seen = [nodes.get(node, ABSENT) for nodes, _ in runs]
        if len(set(seen)) > 1:
            result.node_flips[node] = seen
    for key in all_statements:
        seen = [statements.get(key, ABSENT) for _, statements in runs]
        if len(set(seen)) > 1:
            result.statement_flips[key] = seen
    return result


def format_comparison(result: Comparison) -> str:
    lines = [f"{len(result.files)} runs, {result.nodes} test nodes, {result.statements} (test, statement) "
             f"verdicts: {len(result.node_flips)} test verdicts and {len(result.statement_flips)} statement "
             "verdicts differ" + (" -- identical" if result.identical else "")]
    for node, seen in result.node_flips.items():
        lines.append(f"  {node}: {' | '.join(seen)}")
    for (node, statement), seen in result.statement_flips.items():
        if node not in result.node_flips:
            lines.append(f"  {node} {statement}: {' | '.join(seen)}")
    return "\n".join(lines)

"""Reading conformance results files (JSON, one per run) into plain objects the report can render.

A results file has a header (the target and its version string, the MQTT versions run, the start
time) and one record per test: statement ids, protocol version, outcome, reason, duration, a known
deviation reference when the failure is a documented one, and the packet trace of its clients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("pass", "fail", "deviation", "not-applicable", "error")


class ResultsError(Exception):
    """A results file that cannot be read; the message says which and why."""


@dataclass
class TestResult:
    nodeid: str
    statements: list[str]
    version: str
    outcome: str
    reason: str = ""
    duration: float = 0.0
    known_deviation: str | None = None
    trace: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.nodeid.split("::", 1)[-1]


@dataclass
class Run:
    path: Path
    target: str
    target_version: str
    mqtt_versions: list[str]
    started: str
    tests: list[TestResult]

    @property
    def label(self) -> str:
        return self.target_version or self.target


def _version(text: object) -> str:
    return {"4": "3.1.1", "5": "5.0", "3.1.1": "3.1.1", "5.0": "5.0"}.get(str(text), str(text))


def _outcome(record: dict) -> str:
    outcome = str(record.get("outcome", "error")).lower().replace("_", "-")
    if record.get("known_deviation") not in (None, "", False) and outcome in ("fail", "xfail", "deviation"):
        return "deviation"
    return {"passed": "pass", "failed": "fail", "skipped": "not-applicable", "n/a": "not-applicable",
            "na": "not-applicable", "xfail": "deviation"}.get(outcome, outcome)


def load_run(path: Path) -> Run:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable JSON results file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list):
        raise ResultsError(f"{path}: expected a JSON object with a 'tests' list (a conformance results file)")
    header = data.get("header") or data.get("run") or {}
    tests = []
    for record in data["tests"]:
        deviation = record.get("known_deviation")
        tests.append(TestResult(
            nodeid=str(record.get("nodeid", "?")),
            statements=[str(s) for s in record.get("statements") or record.get("statement_ids") or []],
            version=_version(record.get("version") or record.get("mqtt_version") or record.get("protocol_version")),
            outcome=_outcome(record),
            reason=str(record.get("reason") or ""),
            duration=float(record.get("duration") or 0.0),
            known_deviation=None if deviation in (None, "", False) else str(deviation),
            trace=list(record.get("trace") or []),
        ))
    return Run(
        path=Path(path),
        target=str(header.get("target") or header.get("target_name") or Path(path).stem),
        target_version=str(header.get("target_version") or header.get("version_string") or ""),
        mqtt_versions=[_version(v) for v in header.get("mqtt_versions") or []],
        started=str(header.get("started") or header.get("start_time") or ""),
        tests=tests,
    )

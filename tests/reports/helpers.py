"""Results files in the conformance plugin's format, written by hand for the report's unit tests."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA = "mqtt-conformance-results/1"


def packet(t: float, direction: str, kind: str, summary: str = "", hex_text: str = "") -> dict:
    entry = {"t": t, "elapsed": t - 1000.0, "dir": direction, "type": kind, "summary": summary or kind}
    if hex_text:
        entry["hex"] = hex_text
    return entry


def record(nodeid: str, statements: list[str], version: str = "5.0", outcome: str = "pass", *, reason: str = "",
           known_deviation: int | None = None, traces: list[dict] | None = None, **extra) -> dict:
    return {"nodeid": nodeid, "statement_ids": statements, "protocol_version": version, "outcome": outcome,
            "reason": reason, "known_deviation": known_deviation, "duration": 0.01,
            "traces": traces if traces is not None else [], **extra}


def results(tests: list[dict], *, name: str = "refbroker", version_string: str = "refbroker 0.1.0",
            option: str | None = None, versions: tuple[str, ...] = ("3.1.1", "5.0"), error: str | None = None,
            **extra) -> dict:
    return {"schema": SCHEMA,
            "target": {"name": name, "option": option or name, "version_string": version_string,
                       "address": "127.0.0.1:1883", "profile": None, "error": error},
            "mqtt_versions": list(versions), "started": "2026-01-01T00:00:00.000+00:00",
            "finished": "2026-01-01T00:00:10.000+00:00", "duration": 10.0, "summary": {}, "tests": tests, **extra}


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return path

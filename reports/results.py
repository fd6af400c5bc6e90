"""Reading conformance results files (JSON, one per run) into plain objects the report can render.

The conformance plugin (`--results=PATH`, schema "mqtt-conformance-results/1") writes a header at the
top level (`target`: {name, option, version_string, error, ...}, `mqtt_versions`, `started`,
`finished`, `duration`, `summary`) and one record per test in `tests`: `nodeid`, `statement_ids`,
`protocol_version`, `outcome` (pass, fail, not-applicable, error), `reason`, `known_deviation` (the
number in conformance/deviations.py when a failure is a documented one), `statement_outcomes` (the
verdict of each statement the test names: pass, fail, deviation, not-applicable, error, not-reached
for a statement the test stopped before checking, or not-checkable for a statement the catalogue says no
black-box test can make fail, named by a test that passed; older files lack it and the test's outcome
stands for all its statements), `duration`, and `traces`
(one per client: {client, client_id, packets: [{t, elapsed, dir, type, summary, hex}]}).

The plugin's version probe writes `versions`: {version: {supported, answer, limits}}; a version with
`supported: false` is one the broker does not speak, `answer` the evidence. Hand-written files may say
the same with `unsupported_versions`, an object {version: reason} (or a list of versions). The report
then shows "not supported" for that broker and version instead of a column of failures.

Interop results share the file format: a top-level `interop` list of {client, broker, scenario,
outcome, reason} with, optionally, `statement`, `attribution` and `traces` (as for tests); a file may
hold tests, interop records, or both.

Older hand-written files with a `header` object, `statements`, `version` and a flat `trace` are read
too. Anything else is refused with a `ResultsError` that names the file and the record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: outcomes of one test as the report shows them; "deviation" is a failure that is a known deviation
OUTCOMES = ("pass", "fail", "deviation", "not-applicable", "error")
#: per-statement values of `statement_outcomes` that give the statement no verdict from that test
NO_VERDICT = ("not-reached", "not-checkable")
SCHEMA_PREFIX = "mqtt-conformance-results/"
SUPPORTED_SCHEMA_MAJOR = 1

_OUTCOME_ALIASES = {
    "pass": "pass", "passed": "pass", "ok": "pass",
    "fail": "fail", "failed": "fail", "failure": "fail",
    "deviation": "deviation", "xfail": "deviation", "xfailed": "deviation", "known-deviation": "deviation",
    "not-applicable": "not-applicable", "n/a": "not-applicable", "na": "not-applicable",
    "skipped": "not-applicable", "skip": "not-applicable",
    "error": "error", "errored": "error", "broken": "error",
}
_DIRECTIONS = {"out": "out", "sent": "out", "send": "out", "in": "in", "received": "in", "recv": "in"}


class ResultsError(Exception):
    """A results file that cannot be read; the message says which file, which record and why."""


@dataclass
class TestResult:
    nodeid: str
    statements: list[str]
    version: str
    outcome: str
    reason: str = ""
    duration: float = 0.0
    #: the known deviation's number (conformance/deviations.py) when the file gives one
    deviation_number: int | None = None
    #: the known deviation as the file gives it ("102", or a free-text reference in older files)
    known_deviation: str | None = None
    #: every packet and event of the test's clients, in time order: {t, rel, client, dir, type, summary, hex}
    trace: list[dict] = field(default_factory=list)
    pcap: str | None = None
    phase: str | None = None
    #: statement id as written in the file -> its verdict in this test (see the module docstring)
    statement_outcomes: dict[str, str] = field(default_factory=dict)

    __test__ = False  # not a pytest test class, whatever its name says

    @property
    def name(self) -> str:
        return self.nodeid.split("::", 1)[-1]

    def outcome_for(self, statement: str) -> str | None:
        """This test's verdict on one of its statements; None when it did not reach the statement."""
        if not self.statement_outcomes:
            return self.outcome
        found = self.statement_outcomes.get(statement)
        if found is None:
            return self.outcome if statement not in self.statements else None
        if found in NO_VERDICT:
            return None
        return normalise_outcome(found) or self.outcome

    @property
    def module(self) -> str:
        return self.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


@dataclass
class InteropResult:
    client: str
    broker: str
    scenario: str
    outcome: str
    reason: str = ""
    #: who broke what, read from the packets (interop/attribution.py)
    attribution: str = ""
    statement: str = ""
    trace: list[dict] = field(default_factory=list)


@dataclass
class Run:
    path: Path
    target: str
    target_version: str
    mqtt_versions: list[str]
    started: str
    tests: list[TestResult]
    target_option: str = ""
    target_error: str | None = None
    finished: str = ""
    duration: float | None = None
    interop: list[InteropResult] = field(default_factory=list)
    #: a unique, readable column name; set by `assign_labels` when several runs are merged
    label: str = ""
    #: MQTT versions the broker does not support: {version: reason} (header `unsupported_versions`)
    unsupported_versions: dict[str, str] = field(default_factory=dict)
    #: where the broker was reached ("127.0.0.1:1883"), when the file says
    address: str = ""
    #: when the run chose a subset of the tests (-k, --statement, --section): the (version, statement id)
    #: pairs its tests check, so the report can tell "not selected" from "untested"; None: every test ran
    selected_statements: frozenset[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            self.label = self.target_version or self.target


def _version(text: object) -> str:
    return {"4": "3.1.1", "5": "5.0", "3.1.1": "3.1.1", "5.0": "5.0", "5.0.0": "5.0",
            "3": "3.1", "3.1": "3.1"}.get(str(text).strip(), str(text).strip())


def normalise_outcome(raw: object, known_deviation: object = None) -> str | None:
    """The report's outcome for a recorded one, or None when it is not an outcome at all."""
    outcome = _OUTCOME_ALIASES.get(str(raw).strip().lower().replace("_", "-").replace(" ", "-"))
    if outcome in ("fail", "deviation") and known_deviation not in (None, "", False):
        return "deviation"
    return outcome


def _probed_unsupported(value: object, path: Path) -> dict[str, str]:
    """{version: answer} for the versions the plugin's probe found unsupported (header `versions`)."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise ResultsError(f"{path}: 'versions' must be an object {{version: {{supported, answer, ...}}}}")
    return {_version(version): str(found.get("answer") or "the broker does not support it")
            for version, found in value.items() if isinstance(found, dict) and found.get("supported") is False}


def _unsupported(value: object, path: Path) -> dict[str, str]:
    if value in (None, "", [], {}):
        return {}
    if isinstance(value, dict):
        return {_version(k): str(v or "the broker does not support it") for k, v in value.items()}
    if isinstance(value, list):
        return {_version(v): "the broker does not support it" for v in value}
    raise ResultsError(f"{path}: 'unsupported_versions' must be an object {{version: reason}} or a list of versions")


def _deviation(value: object) -> tuple[int | None, str | None]:
    if value in (None, "", False):
        return None, None
    if isinstance(value, bool):
        return None, "yes"
    if isinstance(value, int):
        return value, str(value)
    text = str(value).strip()
    match = re.fullmatch(r"#?\s*(\d+)", text) or re.match(r"(?:known deviation\s*)?#(\d+)\b", text, re.IGNORECASE)
    return (int(match.group(1)) if match else None), text


def _trace(record: dict, where: str) -> list[dict]:
    """One time-ordered list of packets from the per-client `traces` (or an older flat `trace`)."""
    packets: list[dict] = []
    if "traces" in record and record["traces"] is not None:
        if not isinstance(record["traces"], list):
            raise ResultsError(f"{where}: 'traces' must be a list of client traces")
        for trace in record["traces"]:
            if not isinstance(trace, dict) or not isinstance(trace.get("packets", []), list):
                raise ResultsError(f"{where}: each entry of 'traces' must be an object with a 'packets' list")
            for packet in trace.get("packets") or []:
                if isinstance(packet, dict):
                    packets.append({**packet, "client": packet.get("client") or trace.get("client") or ""})
    elif record.get("trace") is not None:
        if not isinstance(record["trace"], list):
            raise ResultsError(f"{where}: 'trace' must be a list of packets")
        packets = [dict(p) for p in record["trace"] if isinstance(p, dict)]
    result = []
    for packet in packets:
        t = packet.get("t", packet.get("time"))
        try:
            t = float(t) if t is not None else None
        except (TypeError, ValueError):
            t = None
        direction = _DIRECTIONS.get(str(packet.get("dir") or packet.get("direction") or "").lower(), "event")
        hex_text = str(packet.get("hex") or "")
        if hex_text and " " not in hex_text:
            hex_text = " ".join(hex_text[i:i + 2] for i in range(0, len(hex_text), 2))
        result.append({"t": t, "client": str(packet.get("client") or ""), "dir": direction,
                       "type": str(packet.get("type") or packet.get("packet") or ""),
                       "summary": str(packet.get("summary") or ""), "hex": hex_text,
                       "hex_truncated": packet.get("hex_truncated")})
    if any(p["t"] is not None for p in result):
        result.sort(key=lambda p: p["t"] if p["t"] is not None else float("inf"))
        start = min(p["t"] for p in result if p["t"] is not None)
        for p in result:
            p["rel"] = (p["t"] - start) if p["t"] is not None else None
    else:
        for p in result:
            p["rel"] = None
    return result


def _test(record: object, index: int, path: Path) -> TestResult:
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: tests[{index}] is not an object")
    nodeid = str(record.get("nodeid") or f"tests[{index}]")
    where = f"{path}: test {nodeid}"
    statements = record.get("statement_ids", record.get("statements")) or []
    if isinstance(statements, str):
        statements = [statements]
    if not isinstance(statements, list):
        raise ResultsError(f"{where}: 'statement_ids' must be a list of statement ids")
    version = record.get("protocol_version") or record.get("version") or record.get("mqtt_version")
    if version in (None, ""):
        raise ResultsError(f"{where}: no 'protocol_version' (3.1.1 or 5.0)")
    number, deviation_text = _deviation(record.get("known_deviation"))
    if "outcome" not in record:
        raise ResultsError(f"{where}: no 'outcome'")
    outcome = normalise_outcome(record["outcome"], deviation_text)
    if outcome is None:
        raise ResultsError(f"{where}: unknown outcome {record['outcome']!r} "
                           f"(expected one of {', '.join(OUTCOMES)})")
    try:
        duration = float(record.get("duration") or 0.0)
    except (TypeError, ValueError):
        raise ResultsError(f"{where}: 'duration' is not a number: {record.get('duration')!r}") from None
    per_statement = record.get("statement_outcomes") or {}
    if not isinstance(per_statement, dict) or not all(
            isinstance(v, str) and (v in NO_VERDICT or normalise_outcome(v) is not None)
            for v in per_statement.values()):
        raise ResultsError(f"{where}: 'statement_outcomes' must map statement ids to outcomes or 'not-reached'")
    return TestResult(
        nodeid=nodeid, statements=[str(s) for s in statements], version=_version(version), outcome=outcome,
        reason=str(record.get("reason") or ""), duration=duration,
        deviation_number=number, known_deviation=deviation_text,
        trace=_trace(record, where), pcap=str(record.get("capture") or record["pcap"]) if record.get("capture") or record.get("pcap") else None,
        phase=str(record["phase"]) if record.get("phase") else None,
        statement_outcomes={str(k): str(v) for k, v in per_statement.items()})


def _interop(record: object, index: int, path: Path) -> InteropResult:
    where = f"{path}: interop[{index}]"
    if not isinstance(record, dict):
        raise ResultsError(f"{where} is not an object")
    missing = [key for key in ("client", "broker", "scenario", "outcome") if record.get(key) in (None, "")]
    if missing:
        raise ResultsError(f"{where}: missing {', '.join(missing)} "
                           "(an interop record is {client, broker, scenario, outcome, reason})")
    outcome = normalise_outcome(record["outcome"])
    if outcome is None or outcome == "deviation":
        raise ResultsError(f"{where}: unknown outcome {record['outcome']!r} "
                           "(expected pass, fail, not-applicable or error)")
    return InteropResult(str(record["client"]), str(record["broker"]), str(record["scenario"]), outcome,
                         str(record.get("reason") or ""), attribution=str(record.get("attribution") or ""),
                         statement=str(record.get("statement") or ""), trace=_trace(record, where))


def load_run(path: Path | str) -> Run:
    """Read one results file; raises ResultsError with the file name and the reason when it cannot."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, not a results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object with a 'tests' or 'interop' list, "
                           f"got a JSON {type(data).__name__}")
    schema = data.get("schema")
    if schema is not None:
        match = re.fullmatch(re.escape(SCHEMA_PREFIX) + r"(\d+)(?:\.\d+)*", str(schema))
        if not match:
            raise ResultsError(f"{path}: schema {schema!r} is not a conformance results schema "
                               f"({SCHEMA_PREFIX}{SUPPORTED_SCHEMA_MAJOR})")
        if int(match.group(1)) > SUPPORTED_SCHEMA_MAJOR:
            raise ResultsError(f"{path}: schema {schema!r} is newer than this report builder reads "
                               f"({SCHEMA_PREFIX}{SUPPORTED_SCHEMA_MAJOR}); update the toolkit")
    has_tests, has_interop = isinstance(data.get("tests"), list), isinstance(data.get("interop"), list)
    if not has_tests and not has_interop:
        raise ResultsError(f"{path}: expected a JSON object with a 'tests' list (a conformance results file) "
                           "or an 'interop' list (interop results)")
    header = data.get("header") or data.get("run") or data
    if not isinstance(header, dict):
        raise ResultsError(f"{path}: 'header' must be an object")
    target = header.get("target")
    if isinstance(target, dict):
        name = str(target.get("name") or target.get("option") or path.stem)
        option = str(target.get("option") or "")
        version_string = str(target.get("version_string") or "")
        error = target.get("error")
        address = str(target.get("address") or "")
        if version_string == "unknown":
            version_string = ""
    else:
        name = str(target or header.get("target_name") or path.stem)
        option = ""
        version_string = str(header.get("target_version") or header.get("version_string") or "")
        error = header.get("target_error")
        address = ""
    tests = [_test(record, i, path) for i, record in enumerate(data.get("tests") or [])]
    interop = [_interop(record, i, path) for i, record in enumerate(data.get("interop") or [])]
    versions = header.get("mqtt_versions") or []
    if not isinstance(versions, list):
        versions = [versions]
    duration = header.get("duration")
    return Run(
        path=path, target=name, target_version=version_string,
        mqtt_versions=[_version(v) for v in versions],
        started=str(header.get("started") or header.get("start_time") or ""),
        tests=tests, target_option=option, target_error=str(error) if error else None,
        finished=str(header.get("finished") or ""),
        duration=float(duration) if isinstance(duration, (int, float)) else None,
        interop=interop,
        unsupported_versions={**_probed_unsupported(header.get("versions"), path),
                              **_unsupported(header.get("unsupported_versions"), path)},
        address=address, selected_statements=_selected(header.get("selection"), path))


def _selected(selection: Any, path: Path | str) -> frozenset[tuple[str, str]] | None:
    """The header's `selection` ({"options": ..., "statements": [[version, id], ...]}), or None."""
    if selection is None:
        return None
    pairs = selection.get("statements") if isinstance(selection, dict) else None
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ResultsError(f"{path}: 'selection' must be an object with 'statements': [[version, id], ...]")
    return frozenset((str(version), str(statement)) for version, statement in pairs)


def assign_labels(runs: list[Run]) -> None:
    """Give every run a unique column label: its version string, plus the target or file where needed."""
    base = [run.target_version or run.target for run in runs]
    extras = [run.target_option or run.target for run in runs]
    labels = list(base)
    for i in range(len(runs)):
        group = [j for j, label in enumerate(base) if label == base[i]]
        # the same version string from different targets (local binary, Docker image): name the target
        if len(group) > 1 and len({extras[j] for j in group}) > 1 and extras[i] and extras[i] != base[i]:
            labels[i] = f"{base[i]} [{extras[i]}]"
    clashing = [labels.count(label) > 1 for label in labels]
    labels = [f"{label} ({run.path.name})" if clash else label for label, run, clash in zip(labels, runs, clashing)]
    clashing = [labels.count(label) > 1 for label in labels]  # the same file given twice
    labels = [f"{label} #{i + 1}" if clash else label for i, (label, clash) in enumerate(zip(labels, clashing))]
    for run, label in zip(runs, labels):
        run.label = label


def load_runs(paths: list[Path | str]) -> list[Run]:
    runs = [load_run(path) for path in paths]
    assign_labels(runs)
    return runs

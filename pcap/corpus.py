"""The reference corpus (pcap/captures/): real mosquitto versions' own bytes, and what changes between them.

`build` regenerates it with one command (`python -m pcap corpus build`):

1. the conformance suite runs against each mosquitto Docker image (2.0.11, 2.0.21, 2.1.2, built by
   `python -m interop images build all`) with `--capture-dir`: one capture per test. The hypothesis-driven
   tests (test_state_machine, test_properties) are left out: their conversations are random and large;
2. every capture is replayed twice against a fresh container of the same version; a capture whose
   replay differs from itself (a race between the test's clients, a timer the fast replay shortens)
   cannot tell versions apart and is left out, named in the manifest with the differences it showed;
3. the kept captures are stored gzip-compressed (Wireshark, tshark and `explain` read them as they are)
   under captures/mosquitto-VERSION/, and captures/manifest.json says for each: the version, the test,
   what it shows (the test's docstring), the statements it checks, the suite's outcome, its size.

The interop matrix adds the conversations of real client libraries (`INTEROP_CLIENTS`) with each version:
every scenario of interop/scenarios.py but those a replay cannot reproduce (a broker restart), each cell's
plain-TCP connections recorded by its proxy (`python -m interop run ... --capture-dir`), checked by the
same two self-replays, stored as captures/mosquitto-VERSION/interop-CLIENT-SCENARIO-vMQTT.pcapng.gz
(manifest: "source": "interop", "test": "interop/CLIENT-SCENARIO-vMQTT"). `parts` builds either part alone.

`upgrade_table` replays one version's corpus against each newer version ("what changes on the wire if I
move from 2.0.11 to 2.1.2") and, on request, against other targets such as refbroker; the result is a
JSON document the report renders (reports/pcap_section.py) and `table_text` prints.
"""

from __future__ import annotations

import datetime
import gzip
import importlib
import json
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .corpus_replay import replay_files
from .reader import read_capture

__all__ = ["MANIFEST", "VERSIONS", "build", "load_manifest", "table_text", "upgrade_table"]

VERSIONS = ("2.0.11", "2.0.21", "2.1.2")
MANIFEST = "manifest.json"
SCHEMA = "mqtt-toolkit-pcap-corpus/1"
TABLE_SCHEMA = "mqtt-toolkit-pcap-upgrade/1"
#: pytest -k expression of the suite's tests that are recorded
SELECTION = "not test_state_machine and not test_properties"
SELF_REPLAYS = 2
PACE = "fast"
PARTS = ("suite", "interop")
#: the client libraries whose interop cells are recorded (Python ones and Debian's mosquitto_pub/sub: no npm)
INTEROP_CLIENTS = ("paho-mqtt", "gmqtt", "mosquitto-cli")
#: interop scenarios a replay cannot reproduce: the broker restarts in the middle
INTEROP_LEFT_OUT = ("broker-restart",)
INTEROP_PREFIX = "interop-"


def _target(version: str) -> str:
    return f"docker:mosquitto-{version}"


def load_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no corpus manifest here (build it: python -m pcap corpus build)") from None


def _shows(nodeid: str) -> str:
    """The first sentence of the test's docstring: what the capture shows."""
    path, _, name = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    function = name.split("[")[0]
    try:
        doc = getattr(importlib.import_module(module), function).__doc__ or ""
    except (ImportError, AttributeError):
        return ""
    text = " ".join(doc.split())
    return text.split(". ")[0].rstrip(".") + "." if text else function.replace("_", " ")


def _record(version: str, work: Path, progress) -> dict:
    results = work / "results.json"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance",
               f"--broker={_target(version)}", "--mqtt-version=all", "-q", "-k", SELECTION,
               f"--capture-dir={work / 'captures'}", f"--results={results}"]
    progress(f"mosquitto {version}: recording the conformance suite ({' '.join(command[2:])})")
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = completed.stdout.strip().splitlines()[-1:] if completed.stdout.strip() else []
    progress(f"mosquitto {version}: suite finished: {' '.join(tail)}")
    if not results.exists():
        raise RuntimeError(f"the suite against {_target(version)} wrote no results:\n{completed.stdout[-3000:]}")
    return json.loads(results.read_text(encoding="utf-8"))


def _self_replays(version: str, paths: list[Path], progress) -> dict[str, list[str]]:
    """{capture path: [difference kinds]} for captures whose replay on their own version differs."""
    from conformance.targets import target_from_option

    racy: dict[str, set[str]] = {}
    captures = [(path, read_capture(path)) for path in paths]
    for round_number in range(1, SELF_REPLAYS + 1):
        target = target_from_option(_target(version))
        target.start()
        try:
            progress(f"mosquitto {version}: self-replay {round_number}/{SELF_REPLAYS} of {len(paths)} captures")
            outcome = replay_files(captures, target.address, pace=PACE)
        finally:
            target.stop()
        for file in outcome.differing_files():
            kinds = {d.kind for s in file.sessions for d in s.differences}
            racy.setdefault(file.path, set()).update(kinds)
    return {path: sorted(kinds) for path, kinds in racy.items()}


def _store(source: Path, destination: Path) -> int:
    data = gzip.compress(source.read_bytes(), compresslevel=9, mtime=0)  # mtime 0: same bytes, same file
    destination.write_bytes(data)
    return len(data)


def _record_interop(version: str, work: Path, clients, progress) -> list[dict]:
    """The interop cells of `clients` against mosquitto `version`, each with its capture (records of
    interop's results format, `capture` naming the pcapng file)."""
    from interop.scenarios import SCENARIOS

    results, captures = work / "interop.json", work / "interop"
    command = [sys.executable, "-m", "interop", "run", f"mosquitto-{version}", "--jobs", "1",
               "--results", str(results), "--capture-dir", str(captures)]
    command += [part for client in clients for part in ("--client", client)]
    command += [part for name in SCENARIOS if name not in INTEROP_LEFT_OUT for part in ("--scenario", name)]
    progress(f"mosquitto {version}: recording the interop cells of {', '.join(clients)}")
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = completed.stdout.strip().splitlines()[-1:] if completed.stdout.strip() else []
    progress(f"mosquitto {version}: interop finished: {' '.join(tail)}")
    if not results.exists():
        raise RuntimeError(f"interop against mosquitto-{version} wrote no results:\n{completed.stdout[-3000:]}")
    return [record for record in json.loads(results.read_text(encoding="utf-8"))["interop"] if record.get("capture")]


def _interop_entry(version: str, record: dict, name: str, size: int, capture, racy: bool) -> dict:
    from interop.scenarios import SCENARIOS

    stem = Path(record["capture"]).stem  # CLIENT-SCENARIO-vMQTT
    scenario, _, mqtt_version = record["scenario"].rpartition(" · ")
    return {
        "file": f"mosquitto-{version}/{name}", "version": version, "source": "interop",
        "test": f"interop/{stem}", "mqtt_version": mqtt_version,
        "shows": f"{SCENARIOS[scenario].doc} (client: {record['client']})",
        "statements": [record["statement"]] if record.get("statement") else [],
        "outcome": record["outcome"], "known_deviation": record.get("known_deviation"),
        "sessions": len(capture.sessions), "packets": sum(len(s.packets()) for s in capture.sessions),
        "bytes": size, "racy": racy,
    }


def _build_interop(out: Path, manifest: dict, version: str, clients, progress, keep_racy: bool) -> None:
    with tempfile.TemporaryDirectory(prefix=f"pcap-corpus-interop-{version}-") as work:
        records = _record_interop(version, Path(work), clients, progress)
        racy = _self_replays(version, [Path(r["capture"]) for r in records], progress)
        directory = out / f"mosquitto-{version}"
        directory.mkdir(exist_ok=True)
        for old in directory.glob(f"{INTEROP_PREFIX}*.pcapng*"):
            old.unlink()
        entries, excluded = [], []
        for record in records:
            source = Path(record["capture"])
            if str(source) in racy and not keep_racy:
                excluded.append({"test": f"interop/{source.stem}",
                                 "reason": "differs when replayed on its own version: " + ", ".join(racy[str(source)])})
                continue
            name = INTEROP_PREFIX + source.name + ".gz"
            size = _store(source, directory / name)
            entries.append(_interop_entry(version, record, name, size, read_capture(directory / name),
                                          str(source) in racy))
    manifest["captures"] = [e for e in manifest["captures"]
                            if not (e["version"] == version and e.get("source") == "interop")] + entries
    info = manifest["versions"].setdefault(version, {"target": _target(version), "captures": 0, "excluded": []})
    info["interop"] = {"clients": list(clients), "left_out": list(INTEROP_LEFT_OUT), "captures": len(entries),
                       "bytes": sum(e["bytes"] for e in entries), "excluded": excluded}
    info["captures"] = sum(1 for e in manifest["captures"] if e["version"] == version)
    progress(f"mosquitto {version}: kept {len(entries)} interop captures, left out {len(excluded)} that do not "
             "replay identically on their own version")


def build(out: Path, *, versions=VERSIONS, progress=print, keep_racy: bool = False, parts=PARTS,
          interop_clients=INTEROP_CLIENTS) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    try:
        manifest = load_manifest(out)
    except FileNotFoundError:
        manifest = {"schema": SCHEMA, "versions": {}, "captures": []}
    manifest.update(schema=SCHEMA, generated_by="python -m pcap corpus build", selection=SELECTION,
                    self_replays=SELF_REPLAYS, pace=PACE)
    for version in versions:
        if "interop" in parts:
            _build_interop(out, manifest, version, interop_clients, progress, keep_racy)
        if "suite" not in parts:
            continue
        with tempfile.TemporaryDirectory(prefix=f"pcap-corpus-{version}-") as work:
            work = Path(work)
            results = _record(version, work, progress)
            tests = [t for t in results["tests"] if t.get("capture")]
            racy = _self_replays(version, [Path(t["capture"]) for t in tests], progress)
            directory = out / f"mosquitto-{version}"
            directory.mkdir(exist_ok=True)
            for old in directory.glob("*.pcapng*"):
                if not old.name.startswith(INTEROP_PREFIX):
                    old.unlink()
            entries, excluded, total = [], [], 0
            for test in tests:
                source = Path(test["capture"])
                if str(source) in racy and not keep_racy:
                    excluded.append({"test": test["nodeid"], "reason": "differs when replayed on its own version: "
                                                                       + ", ".join(racy[str(source)])})
                    continue
                name = source.name + ".gz"
                size = _store(source, directory / name)
                total += size
                capture = read_capture(directory / name)
                entries.append({
                    "file": f"mosquitto-{version}/{name}", "version": version, "test": test["nodeid"],
                    "mqtt_version": test.get("protocol_version"), "shows": _shows(test["nodeid"]),
                    "statements": test.get("statement_ids", []), "outcome": test.get("outcome"),
                    "known_deviation": test.get("known_deviation"),
                    "sessions": len(capture.sessions), "packets": sum(len(s.packets()) for s in capture.sessions),
                    "bytes": size, "racy": str(source) in racy,
                })
            manifest["captures"] = [e for e in manifest["captures"]
                                    if e["version"] != version or e.get("source") == "interop"] + entries
            interop = manifest["versions"].get(version, {}).get("interop")
            manifest["versions"][version] = {
                "target": _target(version), "broker": results["target"].get("version_string"),
                "recorded": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
                "captures": sum(1 for e in manifest["captures"] if e["version"] == version),
                "bytes": total, "excluded": excluded, "suite_summary": results.get("summary"),
                **({"interop": interop} if interop else {}),
            }
            progress(f"mosquitto {version}: kept {len(entries)} captures ({total / 1e6:.2f} MB), left out "
                     f"{len(excluded)} that do not replay identically on their own version")
    manifest["captures"].sort(key=lambda e: (VERSIONS.index(e["version"]) if e["version"] in VERSIONS else 99,
                                             e["file"]))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


# ---------------------------------------------------------------------------------- upgrade table


def _replay_corpus(directory: Path, manifest: dict, version: str, target_option: str, pace: str, progress) -> dict:
    from conformance.targets import target_from_option

    entries = [e for e in manifest["captures"] if e["version"] == version]
    captures = [(directory / e["file"], read_capture(directory / e["file"])) for e in entries]
    target = target_from_option(target_option)
    target.start()
    try:
        progress(f"replaying the {version} corpus ({len(captures)} captures) against {target_option} "
                 f"({target.version_string})")
        outcome = replay_files(captures, target.address, pace=pace, target_name=target_option)
        broker = target.version_string
    finally:
        target.stop()
        cleanup = getattr(target, "cleanup", None)
        if callable(cleanup):
            cleanup()
    by_test = {str(directory / e["file"]): e for e in entries}
    differing = []
    for file in outcome.differing_files():
        entry = by_test.get(file.path, {})
        differing.append({
            "file": entry.get("file", file.path), "test": entry.get("test"), "statements": entry.get("statements", []),
            "kinds": dict(Counter(d.kind for s in file.sessions for d in s.differences)),
            "diff": [line for s in file.sessions if not s.equal
                     for line in [f"session {s.number}:"] + s.lines()][:60],
        })
    return {
        "from": version, "to": target_option, "to_broker": broker, "pace": pace,
        "captures": len(captures), "differing_captures": len(differing),
        "sessions": sum(len(f.sessions) for f in outcome.files),
        "differing_sessions": sum(1 for f in outcome.files for s in f.sessions if not s.equal),
        "kinds": dict(outcome.kind_counts()), "differing": differing,
    }


def upgrade_table(directory: Path, *, versions=VERSIONS, pace: str = PACE, progress=print,
                  extra_targets=()) -> dict:
    """Replay each version's corpus against every later version (and the oldest one's against
    `extra_targets`); a JSON-ready document."""
    manifest = load_manifest(directory)
    versions = [v for v in versions if any(e["version"] == v for e in manifest["captures"])]
    pairs = [(a, _target(b)) for i, a in enumerate(versions) for b in versions[i + 1:]]
    if versions:
        pairs += [(versions[0], target) for target in extra_targets]
    from .diff import RULES

    # Each pair replays against its own broker and mostly waits for answers: run them side by side
    # (the table keeps the order of `pairs`)
    with ThreadPoolExecutor(max_workers=max(1, len(pairs))) as pool:
        rows = list(pool.map(lambda pair: _replay_corpus(directory, manifest, *pair, pace, progress), pairs))
    return {
        "schema": TABLE_SCHEMA, "generated_by": "python -m pcap corpus upgrade-table",
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "rules": [{"name": n, "text": t} for n, t in RULES],
        "pairs": rows,
    }


def table_text(table: dict) -> str:
    rows = [f"{'from':8} {'to':28} {'captures':>8} {'differ':>6}  differences by kind"]
    for pair in table["pairs"]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(pair["kinds"].items(), key=lambda i: (-i[1], i[0])))
        rows.append(f"{pair['from']:8} {pair['to']:28} {pair['captures']:>8} {pair['differing_captures']:>6}  "
                    f"{kinds or '-'}")
    return "\n".join(rows)


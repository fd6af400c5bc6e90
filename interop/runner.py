"""Run the matrix for one broker target: every client library × scenario × MQTT version that applies.

    run_broker("mosquitto", clients=[...], scenarios=[...], results="results/interop-mosquitto.json", jobs=2)

The broker is started once (with the matrix's TLS certificates) and stopped at the end; every cell runs
through a recording proxy (interop/tracing.py) so a failing cell carries the packet trace and an
attribution. Cells that restart the broker run last, one at a time; the others run on `jobs` worker
threads, each with its own driver processes. A cell that exceeds its scenario's time limit has its
drivers killed and fails as hung. Progress: one line per cell with an estimate of what is left.

Results are written in the shared results format (`interop` records), readable by `python -m reports`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from conformance.deviations import DEVIATIONS, applies_to_target

from .brokers import build_target
from .cell import Cell, CellFailure, DriverPool, NotApplicable
from .clients import CLIENTS, ClientSpec
from .clients.driver import ClientError, ClientHung
from .probe import v5_connack_properties
from .scenarios import SCENARIOS, Scenario
from .tlsfiles import make_tls_files
from .tracing import CellTrace


@dataclass
class Plan:
    client: ClientSpec
    scenario: Scenario
    version: str


def plan_cells(broker, clients: list[ClientSpec], scenarios: list[Scenario]) -> tuple[list[Plan], list[dict]]:
    """The cells to run and the not-applicable records for version combinations that cannot run."""
    plans, skipped = [], []
    for client in clients:
        for scenario in scenarios:
            for version in scenario.versions:
                why = None
                if version not in client.versions:
                    why = f"{client.name} does not speak MQTT {version}"
                elif version not in broker.capabilities.versions:
                    why = f"{broker.name} does not speak MQTT {version}"
                if why:
                    skipped.append({"client": client.name, "scenario": scenario.name, "mqtt_version": version,
                                    "outcome": "not-applicable", "reason": why})
                else:
                    plans.append(Plan(client, scenario, version))
    return plans, skipped


class Progress:
    def __init__(self, total: int, out=sys.stdout):
        self.total, self.done, self.out = total, 0, out
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        with self.lock:
            self.done += 1
            elapsed = time.monotonic() - self.started
            left = elapsed / self.done * (self.total - self.done)
            print(f"[{self.done:>4}/{self.total}] {text}  (~{left / 60:.1f} min left)", file=self.out, flush=True)


def known_deviation(broker, version: str, statement: str):
    """The documented deviation (conformance/deviations.py) of this broker for this statement, if any."""
    for deviation in DEVIATIONS.values():
        if (version, statement) in deviation.statements and applies_to_target(deviation.number, broker):
            return deviation
    return None


def run_cell(plan: Plan, pool: DriverPool, broker, tls_files, trace: CellTrace) -> dict:
    scenario = plan.scenario
    cell = Cell(scenario.name, plan.version, plan.client, pool, broker, trace, scenario.limit,
                tls_files=tls_files)
    started = time.monotonic()
    outcome, reason, statement = "pass", "", None
    try:
        for need in scenario.needs:
            why = cell.lacks(need)
            if why:
                raise NotApplicable(why)
        scenario.run(cell)
    except NotApplicable as exc:
        outcome, reason = "not-applicable", str(exc)
    except CellFailure as exc:
        outcome, reason, statement = "fail", str(exc), exc.statement
    except ClientHung as exc:
        outcome, reason = "fail", f"hung: {exc}; the client was killed"
        for index in list(pool.drivers):
            pool.kill(index)
    except ClientError as exc:
        if exc.message.split(": ", 1)[-1].startswith("unsupported:") or "unsupported:" in exc.message:
            outcome, reason = "not-applicable", f"{plan.client.name}: {exc.message.split('unsupported:', 1)[1].strip()}"
        else:
            outcome, reason = "fail", f"the library reported an error: {exc}"
    except Exception as exc:  # noqa: BLE001 - a scenario bug is an error of the cell, not of the run
        outcome, reason = "error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    finally:
        pool.reset()
    record = {"client": plan.client.name, "scenario": scenario.name, "mqtt_version": plan.version,
              "outcome": outcome, "reason": reason, "duration": round(time.monotonic() - started, 3)}
    if statement:
        record["statement"] = statement
        known = known_deviation(broker, plan.version, statement)
        if known is not None:  # the conformance suite documents it: say so, the cell still fails
            record["known_deviation"] = known.number
            record["reason"] += f" (known deviation #{known.number} of {broker.name}: {known.title})"
    if cell.notes:
        record["notes"] = cell.notes
        if not reason:
            record["reason"] = "; ".join(cell.notes)
    trace.finish(record, plan.version)
    return record


def _worker(plans: "queue.Queue[Plan]", broker, tls_files, records: list, progress: Progress, log_dir: str,
            versions: dict, capture_dir: str | None = None) -> None:
    pools: dict[str, DriverPool] = {}
    try:
        while True:
            try:
                plan = plans.get_nowait()
            except queue.Empty:
                return
            pool = pools.setdefault(plan.client.name, DriverPool(plan.client, log_dir))
            trace = CellTrace(broker)
            try:
                try:
                    info = pool.hello()
                    versions[plan.client.name] = f"{info.get('library', plan.client.name)} {info.get('version', '')}".strip()
                except (ClientHung, ClientError) as exc:
                    record = {"client": plan.client.name, "scenario": plan.scenario.name,
                              "mqtt_version": plan.version, "outcome": "error",
                              "reason": f"the {plan.client.name} driver did not start: {exc}"}
                else:
                    record = run_cell(plan, pool, broker, tls_files, trace)
                    if capture_dir:
                        path = Path(capture_dir) / f"{plan.client.name}-{plan.scenario.name}-v{plan.version}.pcapng"
                        if trace.save(path):
                            record["capture"] = str(path)
            finally:
                trace.close()
            records.append(record)
            progress.line(f"{plan.client.name} × {broker.name} · {plan.scenario.name} · {plan.version}: "
                          f"{record['outcome']} ({record.get('duration', 0):.1f} s)"
                          + (f" — {record['reason'].splitlines()[0][:100]}" if record["outcome"] != "pass" and
                             record["reason"] else ""))
    finally:
        for pool in pools.values():
            pool.close()


def run_broker(broker_name: str, *, clients: list[str] | None = None, scenarios: list[str] | None = None,
               results: str | os.PathLike, jobs: int = 2, out=sys.stdout, capture_dir: str | None = None) -> int:
    """Run the cells against one broker target; `capture_dir`: keep each cell's plain-TCP conversation there
    as a pcapng capture (the record names it as `capture`)."""
    if capture_dir:
        Path(capture_dir).mkdir(parents=True, exist_ok=True)
    # the recording proxy's loop may log a cancelled relay when a cell's proxy stops: not a result
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    broker = build_target(broker_name)
    client_specs = [CLIENTS[name] for name in (clients or list(CLIENTS))]
    scenario_list = [SCENARIOS[name] for name in (scenarios or list(SCENARIOS))]
    workdir = tempfile.mkdtemp(prefix=f"interop-run-{broker_name}-")
    os.chmod(workdir, 0o755)
    tls_dir = Path(workdir) / "tls"
    broker.tls_files = make_tls_files(tls_dir)
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    records: list[dict] = []
    versions: dict[str, str] = {}
    broker_error = broker.unavailable()
    plans, skipped = plan_cells(broker, client_specs, scenario_list)
    usable = []
    for plan in plans:
        why = plan.client.unavailable()
        if why:
            records.append({"client": plan.client.name, "scenario": plan.scenario.name, "mqtt_version": plan.version,
                            "outcome": "error", "reason": f"{plan.client.name} cannot run here: {why}"})
        else:
            usable.append(plan)
    records.extend(skipped)
    if broker_error is None:
        try:
            print(f"starting {broker_name} ...", file=out, flush=True)
            broker.start()
        except Exception as exc:  # noqa: BLE001 - reported as the cells' error
            broker_error = f"{broker_name} did not start: {exc}"
    try:
        if broker_error:
            print(f"{broker_name}: {broker_error}", file=out, flush=True)
            for plan in usable:
                records.append({"client": plan.client.name, "scenario": plan.scenario.name,
                                "mqtt_version": plan.version, "outcome": "error", "reason": broker_error})
        else:
            if "5.0" in broker.capabilities.versions:
                broker.v5_connack = v5_connack_properties(*broker.address, credentials=broker.capabilities.credentials)
            print(f"{broker.version_string}: {len(usable)} cell(s) on {jobs} worker(s)", file=out, flush=True)
            progress = Progress(len(usable), out)
            ordinary = [p for p in usable if "restart" not in p.scenario.needs]
            restarting = [p for p in usable if "restart" in p.scenario.needs]
            for batch, workers in ((ordinary, jobs), (restarting, 1)):
                work: queue.Queue[Plan] = queue.Queue()
                for plan in batch:
                    work.put(plan)
                threads = [threading.Thread(target=_worker, args=(work, broker, broker.tls_files, records, progress,
                                                                    workdir, versions, capture_dir), daemon=True)
                           for _ in range(max(1, min(workers, len(batch))))]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
    finally:
        logs = broker.logs() if not broker_error else ""
        broker.cleanup()
    label = broker.version_string if not broker_error else broker_name
    for record in records:
        record["broker"] = label
        record["client"] = versions.get(record["client"], record["client"])
        record["scenario"] = f"{record['scenario']} · {record.pop('mqtt_version')}"
    records.sort(key=lambda r: (r["client"], r["scenario"]))
    document = {
        "header": {"target": {"name": broker_name, "version_string": label, "error": broker_error},
                   "kind": "interop", "started": started_at, "duration": round(time.monotonic() - started, 1),
                   "clients": sorted(set(versions.values())), "mqtt_versions": list(broker.capabilities.versions)},
        "interop": records,
    }
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(document, indent=1), encoding="utf-8")
    counts = {o: sum(r["outcome"] == o for r in records) for o in ("pass", "fail", "not-applicable", "error")}
    print(f"{label}: " + ", ".join(f"{n} {o}" for o, n in counts.items()) +
          f" in {time.monotonic() - started:.0f} s; results: {results}", file=out, flush=True)
    if logs:
        (results.parent / f"{results.stem}.broker.log").write_text(logs[-2_000_000:], encoding="utf-8")
    import shutil
    shutil.rmtree(workdir, ignore_errors=True)
    # Under CI a missing broker or client library is a failure, as a skip for a missing tool is elsewhere
    missing = [r for r in records if r["outcome"] == "error" and ("cannot run here" in r["reason"]
                                                                  or "did not start" in r["reason"])]
    if os.environ.get("CI") and (broker_error or missing):
        print(f"error: under CI every broker and client must run: {broker_error or missing[0]['reason']}",
              file=sys.stderr)
        return 1
    return 0

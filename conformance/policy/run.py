"""A policy run that keeps its verdicts: pytest runs test_policy.py in this process, `Recorder` notes
each check's outcome by listener and variant, and `run` hands back the results dict table.py renders.

    results, status = run(layout_text, label="mosquitto 2.0.11", pytest_args=["-q"])

Before the checks, `reachable` makes sure something listens on the layout's listeners (else every cell
would read "fail" for a broker that is simply not started) and `broker_version` asks the broker what it
is ($SYS/broker/version, retained by mosquitto and refbroker), so a table names the broker it came from.
"""

from __future__ import annotations

import datetime
import socket
import time
import uuid

import pytest

from ..client import HarnessError, RawClient
from .layout import PolicyLayout, PolicyListener
from .table import RESULTS_SCHEMA

__all__ = ["Recorder", "broker_version", "reachable", "run"]


class Recorder:
    """pytest plugin: {nodeid: record} of the policy checks, one record per test (its worst phase)."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The checks that will run (after -k and other deselection)."""
        for item in session.items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            listener = next((value for value in params.values() if isinstance(value, PolicyListener)), None)
            variant = " ".join(str(value) for value in params.values() if isinstance(value, str))
            self.items[item.nodeid] = {"check": getattr(item, "originalname", item.name),
                                       "listener": listener.id if listener else None,
                                       "variant": variant, "outcome": None, "message": ""}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.items.get(report.nodeid)
        if record is None:
            return
        if report.skipped:
            outcome, message = "skip", _skip_reason(report)
        elif report.failed:
            outcome, message = ("fail" if report.when == "call" else "error"), _failure_message(report)
        elif report.when == "call":
            outcome, message = "pass", ""
        else:
            return
        if record["outcome"] in (None, "pass"):  # a teardown error after a pass still counts
            record["outcome"], record["message"] = outcome, message

    def records(self) -> list[dict]:
        """Every collected check; one that never reported (the run was interrupted) is "error"."""
        return [{**record, "outcome": record["outcome"] or "error",
                 "message": record["message"] or ("" if record["outcome"] else "did not run")}
                for record in self.items.values()]


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _failure_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    lines = [line for line in str(text).splitlines() if line.strip()]
    return " / ".join(lines[:2])[:400]


def reachable(layout: PolicyLayout, timeout: float = 2.0) -> list[PolicyListener]:
    """The listeners on which nothing accepts a TCP connection."""
    closed = []
    for listener in layout.listeners:
        try:
            socket.create_connection((layout.host, listener.port), timeout=timeout).close()
        except OSError:
            closed.append(listener)
    return closed


def broker_version(layout: PolicyLayout, seconds: float = 2.0) -> str | None:
    """What the broker says it is: $SYS/broker/version, read on the first plain unauthenticated listener
    (None when there is none, or the broker does not publish it)."""
    try:
        listener = layout.first(transport="tcp", authenticated=False, client_certificate=False)
    except LookupError:
        return None
    try:
        client = RawClient(endpoint=layout.endpoint(listener), client_id=f"policy-version-{uuid.uuid4().hex[:8]}",
                           name="version")
    except HarnessError:
        return None
    try:
        client.connect()
        client.subscribe(("$SYS/broker/version", 0))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for publish in client.collect_publishes(deadline - time.monotonic(), until_count=1):
                if publish.topic == "$SYS/broker/version":
                    return publish.payload.decode("utf-8", "replace")
        return None
    except Exception:  # noqa: BLE001 - a broker that refuses or closes simply tells nothing
        return None
    finally:
        client.close()


def run(layout: PolicyLayout, layout_text: str, *, label: str, pytest_args: list[str]) -> tuple[dict, int]:
    """Run the policy checks against `layout` (given on the command line as `layout_text`): the results
    dict and pytest's exit status."""
    started = datetime.datetime.now(datetime.timezone.utc)
    version = broker_version(layout)
    recorder = Recorder()
    t0 = time.monotonic()
    # this process imported refbroker before pytest could mark it for assertion rewriting: nothing to warn about
    status = pytest.main(["-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                          "--pyargs", "conformance.policy",
                          "--policy-layout", layout_text, *pytest_args], plugins=[recorder])
    results = {
        "schema": RESULTS_SCHEMA,
        "label": label,
        "layout": layout.source,
        "host": layout.host,
        "broker_version": version,
        "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "seconds": round(time.monotonic() - t0, 1),
        "pytest_status": int(status),
        "listeners": [{"id": li.id, "port": li.port, "public_port": li.public_port, "transport": li.transport,
                       "authenticated": li.authenticated, "certificate": li.certificate,
                       "client_certificate": li.client_certificate, "purpose": li.purpose}
                      for li in layout.listeners],
        "checks": recorder.records(),
    }
    return results, int(status)

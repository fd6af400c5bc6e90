"""The pytest plugin of the conformance suite (entry point `pytest11`: `mqtt_conformance`).

    pytest --pyargs conformance --broker=mosquitto --mqtt-version=all --results=results/run.json

Options: `--broker=TARGET` (see conformance/targets.py), `--mqtt-version=3.1.1|5.0|all`,
`--results=PATH` (default results/conformance-<target>.json), `--target-profile=FILE` (TOML).

Tests are tagged `@pytest.mark.spec("MQTT-3.3.1-4", version="5.0")` with statement ids of the
catalogue. A test that asks for the `version` fixture runs once per selected protocol version that its
markers name (a marker without `version` names both, unless its ids exist in one version only).
Fixtures: `broker` (session: the started target), `version` (4 or 5), `client_factory` (connected raw
clients with unique client ids, closed after the test, their traces kept for the results), `topic`
(a topic prefix unique to the test).

The plugin is inert in sessions that do not use it: it adds options and the marker, and everything
else happens only for tests that request its fixtures. Only such tests are written to the results
file, and no file is written when there are none.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import allure_support, outcomes
from .client import HarnessError, RawClient
from .outcomes import NOT_APPLICABLE_PREFIX, not_applicable, parse_known_deviation
from .targets import BrokerTarget, TargetProfile, load_profile, target_from_option

VERSION_LEVELS = {"3.1.1": 4, "5.0": 5}
LEVEL_NAMES = {4: "3.1.1", 5: "5.0"}
RESULTS_SCHEMA = "mqtt-conformance-results/1"
_SUITE_FIXTURES = frozenset({"broker", "client_factory", "version", "topic"})

_session_key = pytest.StashKey["ConformanceSession"]()
_record_key = pytest.StashKey[dict]()
_clients_key = pytest.StashKey[list]()


# ------------------------------------------------------------------------------------------ options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mqtt-conformance", "MQTT conformance suite")
    group.addoption("--broker", default=None, metavar="TARGET",
                    help="broker to test: refbroker (default), mosquitto, mosquitto:/path/to/binary, "
                         "docker:mosquitto-2.0.11/-2.0.21/-2.1.2 (images from python -m interop images build) or HOST:PORT")
    group.addoption("--mqtt-version", default="all", metavar="VERSION",
                    help="MQTT version(s) to test: 3.1.1, 5.0 or all (default: all)")
    group.addoption("--results", default=None, metavar="PATH",
                    help="results JSON file (default: results/conformance-<target>.json)")
    group.addoption("--target-profile", default=None, metavar="FILE",
                    help="TOML file declaring the target's optional features and known deviations")


def parse_versions(text: str | None) -> tuple[str, ...]:
    text = (text or "all").strip()
    if text == "all":
        return ("3.1.1", "5.0")
    versions = tuple(part.strip() for part in text.split(","))
    for version in versions:
        if version not in VERSION_LEVELS:
            raise ValueError(f"--mqtt-version: unknown version {version!r}; expected 3.1.1, 5.0 or all")
    return versions


# ------------------------------------------------------------------------------------------ session


@dataclass
class ConformanceSession:
    """Per pytest-session state: options, the target (once started) and the result records."""

    config: pytest.Config
    broker_option: str | None
    versions: tuple[str, ...]
    results_option: str | None
    profile: TargetProfile
    target: BrokerTarget | None = None
    target_error: str | None = None
    records: list[dict] = field(default_factory=list)
    started: str = field(default_factory=lambda: _now())
    started_monotonic: float = field(default_factory=time.monotonic)
    broker_log: str = ""
    results_written: str | None = None

    def target_name(self) -> str:
        if self.target is not None:
            return self.target.display_name()
        return self.profile.name or (self.broker_option or "refbroker")

    def results_path(self) -> Path:
        if self.results_option:
            path = Path(self.results_option)
        else:
            safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.target_name()).strip("_") or "target"
            path = Path("results") / f"conformance-{safe}.json"
        if not path.is_absolute():
            path = Path(self.config.invocation_params.dir) / path
        return path


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "spec(*ids, version=None): normative MQTT statement(s) the test checks; version '3.1.1', '5.0' or "
        "omitted for both (conformance suite)")
    try:
        versions = parse_versions(config.getoption("--mqtt-version"))
        profile = load_profile(config.getoption("--target-profile"))
        broker_option = config.getoption("--broker")
        if broker_option is not None:
            target_from_option(broker_option)  # syntax check only: nothing is started here
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_session_key] = ConformanceSession(config, broker_option, versions,
                                                    config.getoption("--results"), profile)
    allure_support.maybe_register(config)  # allure labels and traces, only with allure-pytest and --alluredir


def _session(config: pytest.Config) -> ConformanceSession:
    return config.stash[_session_key]


# ------------------------------------------------------------------------------ markers and versions


def spec_versions(markers: list[pytest.Mark], catalogue_check: bool = True) -> dict[str, list[str]]:
    """{version: [statement ids]} named by a test's `spec` markers, ids in catalogue spelling.

    A marker without `version` applies to each version whose catalogue has its ids. Raises ValueError
    for unknown ids, versions, or markers without ids.
    """
    try:
        from .catalogue import normalise_id
    except ImportError:  # the catalogue is written by someone else; work without it until it exists
        normalise_id = None  # type: ignore[assignment]
    result: dict[str, list[str]] = {}
    for mark in markers:
        ids = [str(i) for i in mark.args]
        if not ids:
            raise ValueError("@pytest.mark.spec needs at least one statement id")
        version = mark.kwargs.get("version")
        unknown_kwargs = set(mark.kwargs) - {"version"}
        if unknown_kwargs:
            raise ValueError(f"@pytest.mark.spec: unknown argument(s) {', '.join(sorted(unknown_kwargs))}")
        if version is not None and str(version) not in VERSION_LEVELS:
            raise ValueError(f"@pytest.mark.spec: version must be '3.1.1' or '5.0', got {version!r}")
        if version is not None:
            candidates = [str(version)]
        elif normalise_id is None or not catalogue_check:
            candidates = list(VERSION_LEVELS)
        else:
            # Without `version`, the marker applies to the versions whose catalogue has its ids. All its
            # ids must agree: a marker mixing a both-version id with a one-version id is a tagging slip.
            homes = {}
            for statement in ids:
                found = []
                for candidate in VERSION_LEVELS:
                    try:
                        normalise_id(candidate, statement)
                        found.append(candidate)
                    except KeyError:
                        pass
                homes[statement] = tuple(found)
            unknown = [statement for statement, found in homes.items() if not found]
            if unknown:
                raise ValueError(f"@pytest.mark.spec: {', '.join(unknown)} not a statement of MQTT 3.1.1 or 5.0")
            if len(set(homes.values())) > 1:
                detail = "; ".join(f"{s} in {' and '.join(v)}" for s, v in homes.items())
                raise ValueError(f"@pytest.mark.spec: ids of different versions in one marker ({detail}); "
                                 "split it into markers with version=")
            candidates = list(next(iter(homes.values())))
        for candidate in candidates:
            normalised = []
            for statement in ids:
                if normalise_id is None or not catalogue_check:
                    normalised.append(statement)
                    continue
                try:
                    normalised.append(normalise_id(candidate, statement))
                except KeyError as exc:
                    raise ValueError(f"@pytest.mark.spec: {exc.args[0] if exc.args else exc}") from None
            for statement in normalised:
                if statement not in result.setdefault(candidate, []):
                    result[candidate].append(statement)
    return result


def _is_ours(metafunc: pytest.Metafunc, name: str) -> bool:
    """Does `name` resolve to this plugin's fixture for this test (not to a project's own fixture)?"""
    try:
        definitions = metafunc.definition._fixtureinfo.name2fixturedefs.get(name)
    except AttributeError:
        return False
    if not definitions:
        return False
    func = getattr(definitions[-1], "func", None)
    return getattr(func, "__module__", None) == __name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "version" not in metafunc.fixturenames or not _is_ours(metafunc, "version"):
        return
    markers = list(metafunc.definition.iter_markers("spec"))
    if markers:
        try:
            per_version = spec_versions(markers)
        except ValueError as exc:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: {exc}") from None
        versions = [v for v in VERSION_LEVELS if v in per_version]
    else:
        versions = list(VERSION_LEVELS)
    metafunc.parametrize("version", [VERSION_LEVELS[v] for v in versions], ids=[f"v{v}" for v in versions],
                         indirect=True, scope="function")


def _is_suite_item(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    if not names & _SUITE_FIXTURES:
        return False
    try:
        definitions = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
    except AttributeError:
        return False
    for name in names & _SUITE_FIXTURES:
        defs = definitions.get(name)
        if defs and getattr(getattr(defs[-1], "func", None), "__module__", None) == __name__:
            return True
    return False


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _session(config)
    selected, deselected = [], []
    for item in items:
        if not _is_suite_item(item):
            selected.append(item)
            continue
        level = getattr(getattr(item, "callspec", None), "params", {}).get("version")
        if level is not None and LEVEL_NAMES.get(level) not in state.versions:
            deselected.append(item)
            continue
        item.stash[_record_key] = {}
        selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


# ----------------------------------------------------------------------------------------- fixtures


class BrokerSession:
    """What tests see of the started target: address, version string, profile, feature checks."""

    def __init__(self, target: BrokerTarget):
        self.target = target
        self.host, self.port = target.address
        self.version_string = target.version_string
        self.profile = target.profile

    @property
    def name(self) -> str:
        return self.target.display_name()

    @property
    def websocket_address(self) -> tuple[str, int] | None:
        """The target's WebSocket listener (host, port), or None."""
        return self.target.websocket_address

    @property
    def enhanced_auth(self) -> dict | None:
        """The target's enhanced-authentication method and credentials, or None."""
        return self.target.enhanced_auth

    def require(self, feature: str, connack: Any = None) -> None:
        """End the test as not applicable unless the broker offers `feature`.

        The target profile decides first; then a v5 CONNACK (when given) through its properties.
        """
        declared = self.profile.feature(feature)
        if declared is False:
            not_applicable(f"the target profile says the broker does not support {feature}")
        if declared is True or connack is None:
            return
        props = getattr(connack, "properties", None)
        if props is None:
            return
        checks: dict[str, Callable[[], bool]] = {
            "retain": lambda: props.retain_available in (None, 1),
            "wildcard_subscriptions": lambda: props.wildcard_subscription_available in (None, 1),
            "subscription_identifiers": lambda: props.subscription_identifier_available in (None, 1),
            "shared_subscriptions": lambda: props.shared_subscription_available in (None, 1),
            "qos1": lambda: props.maximum_qos in (None, 1),
            "qos2": lambda: props.maximum_qos is None,
            "topic_alias": lambda: bool(props.topic_alias_maximum),
        }
        check = checks.get(feature)
        if check is not None and not check():
            not_applicable(f"the broker's CONNACK says it does not support {feature} ({props!r})")

    def deviation_applies(self, number: int) -> bool:
        from .deviations import applies_to_target

        return applies_to_target(number, self.target)


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest):
    """The session's broker target, started once."""
    state = _session(request.config)
    try:
        target = target_from_option(state.broker_option, profile=state.profile)
    except ValueError as exc:
        raise HarnessError(str(exc)) from None
    state.target = target
    try:
        target.start()
    except HarnessError as exc:
        state.target_error = str(exc)
        raise
    except Exception as exc:
        state.target_error = f"{type(exc).__name__}: {exc}"
        raise HarnessError(f"the broker target {target.name} did not start: {exc}") from exc
    outcomes.set_current_target(target)
    try:
        yield BrokerSession(target)
    finally:
        outcomes.set_current_target(None)
        try:
            target.stop()
        finally:
            try:
                state.broker_log = target.logs()
            except Exception:  # noqa: BLE001 - logs are a courtesy
                state.broker_log = ""
            cleanup = getattr(target, "cleanup", None)
            if callable(cleanup):
                cleanup()


@pytest.fixture
def version(request: pytest.FixtureRequest) -> int:
    """The MQTT protocol level under test: 4 (3.1.1) or 5 (5.0)."""
    param = getattr(request, "param", None)
    if param is not None:
        return param
    return VERSION_LEVELS[_session(request.config).versions[0]]


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic prefix unique to this test, e.g. "conformance/3f2a9c1d0b"."""
    return f"conformance/{uuid.uuid4().hex[:10]}"


class ClientFactory:
    """Makes raw clients for one test: unique client ids, traces kept, all closed afterwards."""

    def __init__(self, broker_session: BrokerSession, version: int, clients: list[RawClient]):
        self.broker = broker_session
        self.version = version
        self.clients = clients
        self._prefix = "c" + uuid.uuid4().hex[:12]
        self._count = 0

    def new_client_id(self) -> str:
        """A fresh client id: 1-23 characters of [0-9a-zA-Z], acceptable to every server [MQTT-3.1.3-5]."""
        self._count += 1
        return f"{self._prefix}n{self._count}"

    def __call__(self, name: str | None = None, *, connect: bool = True, client_id: str | None = None,
                 version: int | None = None, websocket: bool = False, **connect_kwargs: Any) -> RawClient:
        """A new client; connected (CONNECT + successful CONNACK) unless `connect=False`.

        `websocket=True`: over the target's WebSocket listener (not applicable if it has none).
        """
        host, port = self.broker.host, self.broker.port
        if websocket:
            address = self.broker.websocket_address
            if address is None:
                not_applicable(self.broker.target.no_websocket_reason)
            host, port = address
        client = RawClient(host, port, version or self.version,
                           client_id=self.new_client_id() if client_id is None else client_id,
                           name=name or f"client{len(self.clients) + 1}", websocket=websocket)
        self.clients.append(client)
        if connect:
            client.connect(**connect_kwargs)
        return client

    def close_all(self) -> None:
        for client in self.clients:
            if client.closed or client.peer_closed:
                client.close()
                continue
            try:
                if client.connack is not None and client.connack.reason_code == 0:
                    client.disconnect()
                else:
                    client.close()
            except Exception:  # noqa: BLE001 - cleanup must not turn a result into an error
                client.close()


@pytest.fixture
def client_factory(request: pytest.FixtureRequest, broker: BrokerSession, version: int):
    """`client_factory(name=None, *, connect=True, client_id=None, version=None, websocket=False, **connect_kwargs)`."""
    clients: list[RawClient] = request.node.stash.setdefault(_clients_key, [])
    factory = ClientFactory(broker, version, clients)
    try:
        yield factory
    finally:
        factory.close_all()


# ------------------------------------------------------------------------------------------ results


def _statement_ids(item: pytest.Item, level: int | None) -> list[str]:
    markers = list(item.iter_markers("spec"))
    if not markers:
        return []
    try:
        per_version = spec_versions(markers)
    except ValueError:
        return [str(i) for mark in markers for i in mark.args]
    if level is None:
        return [i for ids in per_version.values() for i in ids]
    return per_version.get(LEVEL_NAMES.get(level, ""), [])


def _reason_from_skip(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr)
    return text.removeprefix("Skipped: ")


def _is_assertion(excinfo: pytest.ExceptionInfo | None) -> bool:
    if excinfo is None:
        return False
    exc = excinfo.value

    def leaves(error: BaseException):
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                yield from leaves(inner)
        else:
            yield error

    return all(isinstance(e, (AssertionError, pytest.fail.Exception)) for e in leaves(exc))


def _failure_text(call: pytest.CallInfo, report: pytest.TestReport) -> str:
    if call.excinfo is not None:
        text = call.excinfo.exconly()
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            text += f" ({os.path.basename(crash.path)}:{crash.lineno})"
        return text[:4000]
    return str(report.longrepr)[:4000]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if _record_key not in item.stash:
        return
    report: pytest.TestReport = outcome.get_result()
    record = item.stash[_record_key]
    record.setdefault("duration", 0.0)
    record["duration"] += report.duration
    when = report.when
    if when == "teardown":
        if report.failed:
            text = "teardown: " + _failure_text(call, report)
            if record.get("outcome") in (None, "pass"):
                record["outcome"], record["reason"], record["phase"] = "error", text, "teardown"
            else:
                record["reason"] = (record.get("reason") or "") + "\n" + text
        return
    if "outcome" in record:
        return
    if report.passed:
        if when == "call":
            record["outcome"], record["reason"] = "pass", ""
        return
    if report.skipped:
        wasxfail = getattr(report, "wasxfail", None)
        if wasxfail is not None:
            record["outcome"] = "fail"
            record["reason"] = wasxfail.removeprefix("reason: ")
            number = parse_known_deviation(wasxfail)
            if number is not None:
                record["known_deviation"] = number
            return
        reason = _reason_from_skip(report)
        if reason.startswith(NOT_APPLICABLE_PREFIX):
            record["outcome"], record["reason"] = "not-applicable", reason[len(NOT_APPLICABLE_PREFIX):]
        else:
            record["outcome"], record["reason"] = "error", f"skipped without a not-applicable reason: {reason}"
        return
    # failed
    if when == "call" and _is_assertion(call.excinfo):
        record["outcome"] = "fail"
    else:
        record["outcome"] = "error"
        if when != "call":
            record["phase"] = when
    record["reason"] = _failure_text(call, report)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(_session_key, None)
    if state is None or state.broker_option is None:
        return None
    return [f"mqtt conformance: broker={state.broker_option} versions={','.join(state.versions)}"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    yield
    if _record_key not in item.stash:
        return
    record = item.stash[_record_key]
    state = _session(item.config)
    level = getattr(getattr(item, "callspec", None), "params", {}).get("version")
    clients: list[RawClient] = item.stash.get(_clients_key, [])
    state.records.append({
        "nodeid": item.nodeid,
        "statement_ids": _statement_ids(item, level),
        "protocol_version": LEVEL_NAMES.get(level) if level is not None else None,
        "outcome": record.get("outcome", "error"),
        "reason": record.get("reason", "" if "outcome" in record else "the test did not run to an outcome"),
        "known_deviation": record.get("known_deviation"),
        "duration": round(record.get("duration", 0.0), 6),
        "traces": [{"client": c.name, "client_id": c.client_id, "packets": c.trace} for c in clients],
    })
    item.stash[_clients_key] = []  # free the traces


def _hypothesis_profile() -> str | None:
    """The suite's hypothesis profile ("ci" or "thorough", see MQTT_CONFORMANCE_PROFILE); None without hypothesis."""
    try:
        from .tests.hypothesis_support import profile_name
    except ImportError:
        return None
    try:
        return profile_name()
    except ValueError:  # an invalid MQTT_CONFORMANCE_PROFILE: the property tests report it themselves
        return os.environ.get("MQTT_CONFORMANCE_PROFILE")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_session_key, None)
    if state is None or not state.records:
        return
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes the file
        return
    path = state.results_path()
    counts: dict[str, int] = {"pass": 0, "fail": 0, "not-applicable": 0, "error": 0}
    known = 0
    for record in state.records:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        known += record["known_deviation"] is not None
    target = state.target
    header = {
        "schema": RESULTS_SCHEMA,
        "target": {
            "name": state.target_name(),
            "option": state.broker_option or "refbroker",
            "version_string": target.version_string if target is not None else "unknown",
            "address": "{}:{}".format(*target.address) if target is not None and state.target_error is None
            and _has_address(target) else None,
            "profile": state.profile.path,
            "error": state.target_error,
        },
        "mqtt_versions": list(state.versions),
        "started": state.started,
        "finished": _now(),
        "duration": round(time.monotonic() - state.started_monotonic, 3),
        "hypothesis_profile": _hypothesis_profile(),
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "summary": {**counts, "known_deviations": known, "total": len(state.records)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    log_path = None
    if state.broker_log:
        log_path = path.with_suffix(".broker.log")
        log_path.write_text(state.broker_log, encoding="utf-8")
        header["broker_log"] = str(log_path)
    document = {**header, "tests": state.records}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    state.results_written = str(path)


def _has_address(target: BrokerTarget) -> bool:
    try:
        _ = target.address
    except Exception:  # noqa: BLE001
        return False
    return True


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_session_key, None)
    written = state.results_written if state is not None else None
    if not written:
        return
    counts: dict[str, int] = {}
    for record in state.records:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    known = sum(r["known_deviation"] is not None for r in state.records)
    parts = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("pass", "fail", "not-applicable", "error"))
    terminalreporter.write_sep("-", "mqtt conformance")
    target = state.target
    terminalreporter.write_line(f"target: {state.target_name()} "
                                f"({target.version_string if target is not None else 'unknown'})")
    terminalreporter.write_line(f"results: {parts} ({known} of the failures are known deviations)")
    terminalreporter.write_line(f"results file: {written}")


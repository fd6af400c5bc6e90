"""The pytest plugin of the conformance suite (entry point `pytest11`: `mqtt_conformance`).

    pytest --pyargs conformance --broker=mosquitto --mqtt-version=all --results=results/run.json

Options: `--broker=TARGET` (see conformance/targets.py), `--mqtt-version=3.1|3.1.1|5.0|all`,
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

import dataclasses
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

from . import allure_support, capture, checks, outcomes, policy, selection, transports
from .classify import PYTEST_STATUS, classify_report
from .client import HarnessError, RawClient
from .hypothesis_profiles import is_derandomized, profile_name
from .items import (
    CLIENTS_KEY,
    LEVEL_NAMES,
    RECORD_KEY,
    VERSION_LEVELS,
    is_recorded,
    item_level,
    parse_versions,
    spec_versions,
    statement_ids,
    traces_of,
)
from .outcomes import not_applicable
from .probe import ServerLimits, VersionSupport, probe_broker, read_identity
from .targets import BrokerTarget, TargetProfile, load_profile, shipped_profiles, target_from_option

RESULTS_SCHEMA = "mqtt-conformance-results/1"
_SUITE_FIXTURES = frozenset({"broker", "client_factory", "version", "topic"})

_session_key = pytest.StashKey["ConformanceSession"]()


# ------------------------------------------------------------------------------------------ options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mqtt-conformance", "MQTT conformance suite")
    group.addoption("--broker", default=None, metavar="TARGET",
                    help="broker to test: refbroker (default; refbroker:KEY=VALUE,... adds refbroker config keys), "
                         "mosquitto, mosquitto:/path/to/binary, docker:mosquitto-2.0.11/-2.0.21/-2.1.2 (images from "
                         "python -m interop images build) or HOST:PORT")
    group.addoption("--mqtt-version", default="all", metavar="VERSION",
                    help="MQTT version(s) to test: 3.1, 3.1.1, 5.0 (comma-separated) or all (default: all)")
    group.addoption("--results", default=None, metavar="PATH",
                    help="results JSON file (default: results/conformance-<target>.json)")
    group.addoption("--target-profile", default=None, metavar="FILE|NAME",
                    help="TOML file declaring the target's name, version, optional features and known deviations, "
                         "or the name of a profile shipped with the suite: " + ", ".join(shipped_profiles()))
    capture.add_options(group)  # --capture-dir: one pcapng per test (conformance/capture.py)
    transports.add_options(group)  # --transport tcp|tls|ws|wss (conformance/transports.py)
    policy.add_options(group)  # --policy-layout ...: the test server policy checks (conformance/policy/)


# ------------------------------------------------------------------------------------------ session


@dataclass
class ConformanceSession:
    """Per pytest-session state: options, the target (once started) and the result records."""

    config: pytest.Config
    broker_option: str | None
    versions: tuple[str, ...]
    results_option: str | None
    profile: TargetProfile
    transport: str = "tcp"
    target: BrokerTarget | None = None
    target_error: str | None = None
    records: list[dict] = field(default_factory=list)
    started: str = field(default_factory=lambda: _now())
    started_monotonic: float = field(default_factory=time.monotonic)
    broker_log: str = ""
    results_written: str | None = None
    #: what probing the broker found, per selected version (set when the broker starts)
    support: dict[str, VersionSupport] = field(default_factory=dict)
    #: (name, version) the broker published on $SYS/broker/version, if it did
    detected_identity: tuple[str, str] | None = None
    #: why the broker's identity could not be read, when it could not (said in the header and the summary)
    identity_note: str | None = None
    hypothesis_seed: int | None = None

    def target_name(self) -> str:
        """The target's name; "NAME over TRANSPORT" for --transport tls/ws/wss, so runs stay apart in reports."""
        if self.target is not None:
            name = self.target.display_name()
        else:
            name = self.profile.name or (self.broker_option or "refbroker")
        return name if self.transport == "tcp" else f"{name} over {self.transport}"

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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "spec(*ids, version=None): normative MQTT statement(s) the test checks; version '3.1', '3.1.1', '5.0' or "
        "omitted for both (conformance suite)")
    try:
        versions = parse_versions(config.getoption("--mqtt-version"))
        profile = load_profile(config.getoption("--target-profile"))
        broker_option = config.getoption("--broker")
        if broker_option is not None:
            target_from_option(broker_option)  # syntax check only: nothing is started here
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    state = ConformanceSession(config, broker_option, versions, config.getoption("--results"), profile,
                               transport=transports.check_options(config))
    config.stash[_session_key] = state
    state.hypothesis_seed = _fix_hypothesis_seed(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    # allure labels and traces, only with allure-pytest and --alluredir; registered after allure-pytest's own
    # plugin (which pytest_configure registers), so that our labels and description are applied last
    allure_support.maybe_register(session.config)


def _session(config: pytest.Config) -> ConformanceSession:
    return config.stash[_session_key]


def _fix_hypothesis_seed(config: pytest.Config) -> int | None:
    """The seed of a random (thorough) Hypothesis run: `--hypothesis-seed`, or one drawn here and handed to
    Hypothesis's pytest plugin (which reads the option after this hook), so the results file can name it.
    None for the derandomized ci profile, whose examples do not depend on a seed."""
    try:
        given = config.getoption("hypothesis_seed")
    except ValueError:  # Hypothesis's pytest plugin is not loaded
        return None
    if given is not None:
        try:
            return int(given)
        except ValueError:
            return None
    if is_derandomized():
        return None
    import random

    seed = random.SystemRandom().randrange(2**32)
    config.option.hypothesis_seed = str(seed)
    return seed


# ------------------------------------------------------------------------------ markers and versions


def _fixture_definitions(item: pytest.Item) -> dict[str, Any]:
    """The fixture definitions each fixture name of a test resolves to (the last one is the one used).

    pytest has no public accessor for this: it keeps it in the test item's `_fixtureinfo`, so this is
    the one place the plugin reads a private pytest attribute (tests/structure allows exactly this one).
    An item without it (a pytest that changed it, another plugin's item) looks foreign to the suite,
    which then leaves it alone."""
    try:
        return item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
    except AttributeError:
        return {}


def _is_ours(metafunc: pytest.Metafunc, name: str) -> bool:
    """Does `name` resolve to this plugin's fixture for this test (not to a project's own fixture)?"""
    definitions = _fixture_definitions(metafunc.definition).get(name)
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
    definitions = _fixture_definitions(item)
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
        item.stash[RECORD_KEY] = {}
        selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


# ----------------------------------------------------------------------------------------- fixtures


#: CONNACK limits that a broker announcing them to MQTT 5.0 clients is taken to apply to 3.1.1 clients too
_LIMITS_FOR_EVERY_VERSION = frozenset({"maximum_packet_size", "maximum_qos", "retain_available",
                                       "wildcard_subscription_available", "shared_subscription_available"})


class BrokerSession:
    """What tests see of the started target: address, version string, profile, feature checks."""

    def __init__(self, target: BrokerTarget, support: dict[str, VersionSupport] | None = None,
                 transport: str = "tcp"):
        self.target = target
        self.host, self.port = target.address  # plain TCP, whatever the transport
        self.version_string = target.version_string
        self.profile = target.profile
        self.transport = transport
        #: where `client_factory` connects (--transport); None: plain TCP at host:port
        self.endpoint = None
        if transport != "tcp":
            self.endpoint = target.endpoint(transport)
            if self.endpoint is None:
                raise HarnessError(f"--transport {transport}: {target.no_transport_reason(transport)}")
        #: per protocol version ("3.1.1", "5.0"): does the broker speak it, and what did its CONNACK announce
        self.support = dict(support or {})

    def limits(self, level: int) -> ServerLimits:
        """The limits the broker's CONNACK announced to the probe at this protocol level.

        MQTT 3.1.1 cannot announce limits. Where the same broker announced them to the MQTT 5.0 probe
        (mosquitto's `max_packet_size`, `max_qos`, `retain_available` apply to every protocol version), the
        3.1.1 tests assume the same limits, so that a packet beyond them is not sent (not applicable) rather
        than answered with a close that 3.1.1 cannot explain; the target profile's [features] come on top."""
        found = self.support.get(LEVEL_NAMES.get(level, ""))
        limits = found.limits if found is not None else ServerLimits()
        v5 = self.support.get("5.0")
        if level != 5 and v5 is not None and v5.supported:
            inherited = {name: value for name, value in v5.limits.announced().items()
                         if name in _LIMITS_FOR_EVERY_VERSION}
            limits = dataclasses.replace(limits, **inherited)
        # What a 3.1.1 broker cannot announce, its target profile can: [features] qos2/qos1/retain = false
        declared = {}
        if self.profile.feature("qos2") is False and limits.maximum_qos is None:
            declared["maximum_qos"] = 0 if self.profile.feature("qos1") is False else 1
        for feature, field_name in (("retain", "retain_available"), ("wildcard_subscriptions",
                                    "wildcard_subscription_available"), ("shared_subscriptions",
                                    "shared_subscription_available")):
            if self.profile.feature(feature) is False:
                declared[field_name] = False
        return dataclasses.replace(limits, **declared) if declared else limits

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
        if declared is True:
            return
        if connack is None or getattr(connack, "properties", None) is None:
            # 3.1.1: what the broker announced to the MQTT 5.0 probe stands for it (see `limits`)
            limits = self.limits(4)
            by_limits: dict[str, Callable[[], bool]] = {
                "retain": lambda: limits.retain_available is not False,
                "wildcard_subscriptions": lambda: limits.wildcard_subscription_available is not False,
                "shared_subscriptions": lambda: limits.shared_subscription_available is not False,
                "qos1": lambda: limits.maximum_qos != 0,
                "qos2": lambda: limits.maximum_qos is None,
            }
            check = by_limits.get(feature)
            if check is not None and not check():
                not_applicable(f"the broker's MQTT 5.0 CONNACK says it does not support {feature} "
                               f"({limits.announced()}), taken to hold for this protocol version too")
            return
        props = connack.properties
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
    _probe(state, target)
    outcomes.set_current_target(target)
    broker_session = BrokerSession(target, state.support, state.transport)
    capture.start(request.config, broker_session)  # --capture-dir: tests connect through a recording proxy
    try:
        yield broker_session
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


def _probe(state: ConformanceSession, target: BrokerTarget) -> None:
    """Which selected versions the broker speaks, its announced limits, and its name and version."""
    host, port = target.address
    prefix = "probe" + uuid.uuid4().hex[:8]
    credentials = target.profile.credentials
    state.support = probe_broker(host, port, state.versions, prefix, credentials)
    spoken = [v for v, found in state.support.items() if found.supported and not found.needs_credentials]
    if spoken and not target.profile.version:
        identity = read_identity(host, port, spoken[0], prefix + "id", credentials=credentials)
        if identity is not None:
            state.detected_identity = identity
            target.detected_identity = identity
        elif target.version_string in (None, "", "unknown"):  # nobody can name the broker: say why
            state.identity_note = _no_identity_reason(state.support)


def _no_identity_reason(support: dict[str, VersionSupport]) -> str:
    """Why $SYS/broker/version gave nothing. A broker that keeps no retained messages (v5 CONNACK Retain
    Available 0; mosquitto with `retain_available false`) cannot deliver the retained version message it
    published at start, however long one waits; say so rather than leave the user guessing."""
    hint = "name it with --target-profile (e.g. --target-profile=mosquitto-2.0.11) so that its known deviations apply"
    if any(found.limits.retain_available is False for found in support.values() if found.supported):
        return ("the broker's CONNACK says Retain Available 0: it keeps no retained messages, so the retained "
                f"$SYS/broker/version it published when it started cannot be read; {hint}")
    return f"nothing arrived on $SYS/broker/version within 1 s (the broker does not publish it, or not to us); {hint}"


@pytest.fixture
def version(request: pytest.FixtureRequest) -> int:
    """The MQTT protocol level under test: 3 (3.1), 4 (3.1.1) or 5 (5.0); not applicable when the broker refused
    that version when probed (one reason for all its tests)."""
    param = getattr(request, "param", None)
    level = param if param is not None else VERSION_LEVELS[_session(request.config).versions[0]]
    broker_session: BrokerSession = request.getfixturevalue("broker")
    found = broker_session.support.get(LEVEL_NAMES[level])
    if found is not None and (not found.supported or found.needs_credentials):
        not_applicable(found.reason())
    return level


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
        endpoint = None if websocket else self.broker.endpoint  # --transport (None: plain TCP)
        if websocket:
            address = self.broker.websocket_address
            if address is None:
                not_applicable(self.broker.target.no_websocket_reason)
            host, port = address
        level = version or self.version
        client = RawClient(host, port, level,
                           client_id=self.new_client_id() if client_id is None else client_id,
                           name=name or f"client{len(self.clients) + 1}", websocket=websocket,
                           server_limits=self.broker.limits(level), credentials=self.broker.profile.credentials,
                           endpoint=endpoint)
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
    clients: list[RawClient] = request.node.stash.setdefault(CLIENTS_KEY, [])
    factory = ClientFactory(broker, version, clients)
    try:
        yield factory
    finally:
        factory.close_all()


# ------------------------------------------------------------------------------------------ results


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if is_recorded(item):
        checks.begin_test()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    if not is_recorded(item):
        return
    report: pytest.TestReport = outcome.get_result()
    record = item.stash[RECORD_KEY]
    record["duration"] = record.get("duration", 0.0) + report.duration
    verdict, reason = classify_report(report, call.excinfo)
    report.conformance_outcome = verdict  # read by pytest_report_teststatus
    if verdict == "pass":
        if report.when == "call":
            record.setdefault("outcome", "pass")
            record.setdefault("reason", "")
        return
    if report.when == "teardown" and record.get("outcome") not in (None, "pass"):
        record["reason"] = (record.get("reason") or "") + "\nteardown: " + reason
        return
    if "outcome" in record and record["outcome"] != "pass":
        return
    record["outcome"], record["reason"] = verdict, reason if report.when == "call" else f"{report.when}: {reason}"
    if report.when != "call":
        record["phase"] = report.when
    if verdict == "deviation":
        from .outcomes import parse_known_deviation

        record["known_deviation"] = parse_known_deviation(reason)
    if call.excinfo is not None:
        record["exception"] = call.excinfo.value


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """pytest's categories follow the suite's outcomes (classify.py): pytest's closing line and the results
    file count the same thing."""
    verdict = getattr(report, "conformance_outcome", None)
    if verdict is None:
        return None
    if verdict == "pass":
        return None if report.when == "call" else ("", "", "")
    return PYTEST_STATUS[verdict]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(_session_key, None)
    if state is None or state.broker_option is None:
        return None
    return [f"mqtt conformance: broker={state.broker_option} versions={','.join(state.versions)} "
            f"transport={state.transport}"]


def _statement_outcomes(item: pytest.Item, level: int | None, record: dict, outcome: str) -> dict[str, str]:
    from .catalogue import normalise_id
    from .deviations import DEVIATIONS

    ids = statement_ids(item, level)
    version = LEVEL_NAMES.get(level) if level is not None else None
    exc = record.get("exception")
    number = record.get("known_deviation") or getattr(exc, "number", None)
    broken: frozenset[str] = frozenset()
    if number in DEVIATIONS and version is not None:
        broken = frozenset(sid for v, sid in DEVIATIONS[number].statements if v == version)

    def normalise(statement: str) -> str:
        return normalise_id(version, statement) if version is not None else statement

    verdicts = checks.statement_outcomes(ids, outcome, ledger=record.get("ledger"), failure=exc,
                                         failure_text=record.get("reason", ""), deviation_statements=broken,
                                         normalise=normalise)
    return _never_pass_unchecked(verdicts, version)


def _never_pass_unchecked(verdicts: dict[str, str], version: str | None) -> dict[str, str]:
    """A statement no black-box test can make fail (catalogue column `checkable`) gets "not-checkable"
    where a passing test would say "pass": the test passing says nothing about it."""
    from .catalogue import load_catalogue

    if version is None:
        return verdicts
    catalogue = load_catalogue()
    result = {}
    for sid, verdict in verdicts.items():
        row = catalogue.get((version, sid))
        result[sid] = checks.NOT_CHECKABLE if verdict == "pass" and row is not None and not row.checkable else verdict
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    yield
    if not is_recorded(item):
        return
    record = item.stash[RECORD_KEY]
    record["ledger"] = checks.current_ledger()
    checks.end_test()
    state = _session(item.config)
    level = item_level(item)
    clients: list[RawClient] = item.stash.get(CLIENTS_KEY, [])
    outcome = record.get("outcome", "error")
    results_outcome = "fail" if outcome == "deviation" else outcome
    state.records.append({
        "nodeid": item.nodeid,
        "statement_ids": statement_ids(item, level),
        "statement_outcomes": _statement_outcomes(item, level, record, outcome),
        "protocol_version": LEVEL_NAMES.get(level) if level is not None else None,
        "outcome": results_outcome,
        "reason": record.get("reason", "" if "outcome" in record else "the test did not run to an outcome"),
        "known_deviation": record.get("known_deviation"),
        "duration": round(record.get("duration", 0.0), 6),
        "traces": traces_of(clients),
        "capture": capture.finish_test(item),
    })
    record.pop("exception", None)  # no reference cycles through tracebacks
    item.stash[CLIENTS_KEY] = []  # free the traces


def _target_header(state: ConformanceSession) -> dict[str, Any]:
    target = state.target
    identity = state.detected_identity
    return {
        "name": state.target_name(),
        "option": state.broker_option or "refbroker",
        "version_string": target.version_string if target is not None else "unknown",
        "identity_source": _identity_source(state),
        "detected": {"name": identity[0], "version": identity[1]} if identity else None,
        "identity_note": state.identity_note,
        "address": "{}:{}".format(*target.address) if target is not None and state.target_error is None
        and _has_address(target) else None,
        "profile": (target.profile if target is not None else state.profile).path,
        "error": state.target_error,
        "transport": state.transport,
    }


def _identity_source(state: ConformanceSession) -> str:
    profile = state.target.profile if state.target is not None else state.profile
    if profile.version:
        return "profile"
    if state.detected_identity:
        return "$SYS/broker/version"
    return "target"


def _versions_header(state: ConformanceSession) -> dict[str, Any]:
    return {version: {"supported": found.supported, "answer": found.answer, "limits": found.limits.announced(),
                      "needs_credentials": found.needs_credentials}
            for version, found in state.support.items()}


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
    header = {
        "schema": RESULTS_SCHEMA,
        "target": _target_header(state),
        "mqtt_versions": list(state.versions),
        "versions": _versions_header(state),
        "started": state.started,
        "finished": _now(),
        "duration": round(time.monotonic() - state.started_monotonic, 3),
        "hypothesis_profile": profile_name(),
        "hypothesis_seed": state.hypothesis_seed,
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "summary": {**counts, "known_deviations": known, "total": len(state.records)},
        "selection": selection.results_header(session.config),  # what -k/--statement/--section chose
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
                                f"({target.version_string if target is not None else 'unknown'}, "
                                f"identified by {_identity_source(state)})")
    if state.identity_note:
        terminalreporter.write_line(f"identity: {state.identity_note}")
    for version, found in state.support.items():
        if not found.supported:
            terminalreporter.write_line(f"does not support MQTT {version}: {found.answer}; its tests are "
                                        "not applicable")
        elif found.needs_credentials:
            terminalreporter.write_line(f"MQTT {version}: {found.reason()}; its tests are not applicable")
        elif found.limits.announced():
            limits = ", ".join(f"{k}={v}" for k, v in found.limits.announced().items())
            terminalreporter.write_line(f"MQTT {version} CONNACK announces: {limits}")
    terminalreporter.write_line(f"results: {parts} ({known} of the failures are known deviations)")
    if state.hypothesis_seed is not None:
        terminalreporter.write_line(f"hypothesis: profile {profile_name()}, seed {state.hypothesis_seed} "
                                    f"(repeat with --hypothesis-seed={state.hypothesis_seed})")
    terminalreporter.write_line(f"results file: {written}")

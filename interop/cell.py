"""One cell of the matrix: one client library, one broker, one scenario, one MQTT version.

`Cell` is what a scenario sees (interop/scenarios.py): named connections opened through the client
library's driver processes, unique topics and client ids, checks that name the statement they enforce,
and the broker's restart. It owns the drivers' connections for the cell's lifetime and nothing else:
the driver processes belong to a `DriverPool`, the broker to the runner.

Outcomes: a scenario that returns passes; `CellFailure` fails it (with the statement); `NotApplicable`
makes it not applicable; a `ClientHung` (no answer within the cell's time limit) fails it with the
reason "hung"; a `ClientError` fails it with the library's error text.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from .clients import ClientSpec
from .clients.driver import ClientError, ClientHung, DriverProcess


class NotApplicable(Exception):
    pass


class CellFailure(Exception):
    def __init__(self, message: str, statement: str | None):
        super().__init__(message)
        self.statement = statement


#: scenario needs that the client library must offer (its driver's `hello` features)
CLIENT_FEATURES = {"will", "will_delay", "session_expiry", "user_properties", "message_expiry", "topic_alias",
                   "subscription_identifier", "response_topic", "correlation_data", "payload_format", "content_type",
                   "receive_maximum", "maximum_packet_size", "connack_properties", "tls", "client_certificate",
                   "websocket"}
#: scenario needs that the broker's profile may switch off (conformance.targets.KNOWN_FEATURES)
PROFILE_FEATURES = {"retain", "will", "persistent_sessions", "shared_subscriptions", "subscription_identifiers",
                    "qos2", "topic_alias", "wildcard_subscriptions"}


#: scenario needs that a v5 broker declares in its CONNACK (0 = not available)
CONNACK_FLAGS = {"shared_subscriptions": "shared_subscription_available",
                 "subscription_identifiers": "subscription_identifier_available",
                 "wildcard_subscriptions": "wildcard_subscription_available", "retain": "retain_available"}


class DriverPool:
    """Driver processes of one client library, started on demand, reused across cells."""

    def __init__(self, spec: ClientSpec, log_dir: str | None = None):
        self.spec = spec
        self.log_dir = log_dir
        self.drivers: dict[int, DriverProcess] = {}
        self.info: dict = {}

    def get(self, index: int) -> DriverProcess:
        driver = self.drivers.get(index)
        if driver is None or not driver.alive:
            log = f"{self.log_dir}/{self.spec.name}-{index}.log" if self.log_dir else None
            driver = DriverProcess(self.spec.command(), name=self.spec.name, cwd=self.spec.cwd, log_path=log,
                                   env=self.spec.environment())
            self.info = driver.start()
            self.drivers[index] = driver
        return driver

    def hello(self) -> dict:
        if not self.info:
            self.get(0)
        return self.info

    def kill(self, index: int) -> None:
        driver = self.drivers.pop(index, None)
        if driver is not None:
            driver.kill()

    def reset(self) -> None:
        for index, driver in list(self.drivers.items()):
            try:
                driver.call("reset", limit=5)
            except (ClientHung, ClientError):
                self.kill(index)

    def close(self) -> None:
        for index in list(self.drivers):
            driver = self.drivers.pop(index)
            driver.close()


_serial = itertools.count(1)


@dataclass
class Cell:
    scenario: str
    version: str
    client: ClientSpec
    pool: DriverPool
    broker: object  # InteropTarget
    wire: object  # interop.tracing.CellTrace: endpoints, and what the recorded packets say
    limit: float
    tls_files: object = None
    notes: list[str] = field(default_factory=list)

    ClientError = ClientError

    def __post_init__(self) -> None:
        self.id = f"{next(_serial):04d}{int(time.time() * 1000) % 100000:05d}"
        self.deadline = time.monotonic() + self.limit
        self.connections: dict[str, int] = {}

    # ------------------------------------------------------------------ applicability

    def lacks(self, need: str) -> str | None:
        """Why the cell cannot run for `need`, or None."""
        features = set(self.pool.hello().get("features", []))
        library = f"{self.client.name}"
        if need in CLIENT_FEATURES and need not in features:
            return f"{library}: its API offers no {need.replace('_', ' ')} (or its driver does not use it)"
        profile = getattr(self.broker, "profile", None)
        if need in PROFILE_FEATURES and profile is not None and profile.feature(need) is False:
            return f"{self.broker.name}: its profile says it has no {need.replace('_', ' ')}"
        declared = self.broker.v5_connack if self.version == "5.0" else None
        flag = CONNACK_FLAGS.get(need)
        if declared and flag and declared.get(flag) == 0:
            return f"{self.broker.name}: its CONNACK says {flag.replace('_', ' ')} = 0"
        if declared and need == "qos2" and declared.get("maximum_qos", 2) < 2:
            return f"{self.broker.name}: its CONNACK says Maximum QoS {declared['maximum_qos']}"
        if need == "restart" and not self.broker.capabilities.restart:
            return f"{self.broker.name} cannot be restarted by the matrix"
        if need == "tls" and self.broker.tls_address is None:
            return f"{self.broker.name}: no TLS listener"
        if need == "client_certificate" and self.broker.mtls_address is None:
            return f"{self.broker.name}: its TLS listener cannot require a client certificate"
        if need == "websocket" and self.broker.websocket_address is None:
            return f"{self.broker.name}: no WebSocket listener"
        return None

    def has(self, need: str) -> bool:
        return self.lacks(need) is None

    def not_applicable(self, reason: str):
        raise NotApplicable(reason)

    # ------------------------------------------------------------------ checks and notes

    def check(self, condition: bool, message: str, statement: str | None) -> None:
        if not condition:
            raise CellFailure(message, statement)

    def note(self, text: str) -> None:
        self.notes.append(text)

    # ------------------------------------------------------------------ names

    def topic(self, suffix: str) -> str:
        return f"interop/{self.id}/{suffix}"

    def client_id(self, suffix: str) -> str:
        return f"i{self.id}{suffix}"[:23]  # 3.1.1 servers must accept 1..23 characters [MQTT-3.1.3-5]

    # ------------------------------------------------------------------ the client library

    def _left(self, wanted: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ClientHung(f"the cell's time limit ({self.limit:g} s) is over")
        return min(wanted, left)

    def _call(self, name: str, op: str, wait: float = 10.0, **arguments) -> dict:
        index = self.connections.get(name, 0)
        driver = self.pool.get(index)
        return driver.call(op, limit=self._left(wait + 2), conn=name, **arguments)

    def connect(self, name: str, *, driver: int = 0, transport: str = "tcp", client_id: str | None = None,
                clean: bool = True, session_expiry: int | None = None, will: dict | None = None, **options) -> dict:
        self.connections[name] = driver
        host, port = self.wire.endpoint(transport)
        arguments = {"host": host, "port": port, "version": self.version, "client_id": client_id or self.client_id(name),
                     "clean": clean, "keepalive": 30, "transport": "tls" if transport == "mtls" else transport}
        if session_expiry is not None and self.version == "5.0":
            arguments["session_expiry"] = session_expiry
        if will is not None:
            arguments["will"] = will
        if transport in ("tls", "mtls"):
            arguments["ca"] = self.tls_files.ca
        if transport == "mtls":
            arguments.update(cert=self.tls_files.client_cert, key=self.tls_files.client_key)
        credentials = self.broker.capabilities.credentials
        if credentials:
            arguments.update(username=credentials[0], password=credentials[1])
        arguments.update(options)
        answer = self._call(name, "connect", timeout=self._left(10), **arguments)
        answer.pop("ok", None)
        answer.pop("id", None)
        code = answer.get("reason_code", 0)
        if code not in (0, None):
            raise CellFailure(f"the broker refused the connection: CONNACK code {code}", None)
        return answer

    def subscribe(self, name: str, topic: str, qos: int = 0, **options) -> list[int]:
        return self._call(name, "subscribe", topic=topic, qos=qos, timeout=self._left(10), **options)["granted"]

    def publish(self, name: str, topic: str, payload: str, qos: int = 0, retain: bool = False,
                properties: dict | None = None) -> None:
        arguments = {"topic": topic, "payload": payload, "qos": qos, "retain": retain}
        if properties:
            arguments["properties"] = properties
        self._call(name, "publish", timeout=self._left(10), **arguments)

    def receive(self, name: str, count: int, timeout: float) -> list[dict]:
        timeout = self._left(timeout)
        return self._call(name, "receive", wait=timeout, count=count, timeout=timeout)["messages"]

    def status(self, name: str) -> bool:
        return bool(self._call(name, "status").get("connected"))

    def disconnect(self, name: str) -> None:
        self._call(name, "disconnect")

    def kill_driver(self, index: int) -> None:
        """The client process dies: its connections close without DISCONNECT."""
        self.pool.kill(index)
        for name in [n for n, i in self.connections.items() if i == index]:
            del self.connections[name]

    def restart_broker(self) -> None:
        self.broker.restart()

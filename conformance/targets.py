"""Broker targets: what the conformance suite runs against.

A target is anything with a name, a way to start and stop it, an address to connect to, logs and a
version string. The suite never looks behind that interface, so interop/ can add Docker images or
other brokers by writing one more `BrokerTarget` subclass, without touching a test.

`target_from_option` turns the `--broker` option into a target:

    refbroker                  the project's reference broker, embedded in the test process (default)
    refbroker:KEY=VALUE,...    the same with refbroker config keys, e.g. refbroker:mosquitto_compat=2.1.2
    mosquitto                  the local mosquitto binary (PATH, then /usr/sbin/mosquitto)
    mosquitto:/path/to/binary  a particular mosquitto binary
    HOST:PORT                  a broker that is already running (started and stopped by someone else)
    KIND:ARGUMENT              a target kind registered by another package (e.g. interop's docker:...)

Other packages add target kinds without conformance importing them: a kind is an entry point in the
group `mqtt_conformance.targets` whose name is the prefix before the colon and whose object is a
callable taking the whole `--broker` text and returning a `BrokerTarget` (ValueError for a bad text).
This project's pyproject.toml registers interop's kinds that way; `register_target_kind` does the same
at run time (for tests, or for a program that embeds the suite).

A target profile (`--target-profile FILE`, TOML) describes what cannot be read from the broker:
optional features it lacks and known deviations that apply to it. See `TargetProfile`.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HarnessError
from .transports import Endpoint, SuiteListeners

__all__ = [
    "BrokerTarget",
    "HostPortTarget",
    "MosquittoTarget",
    "RefbrokerTarget",
    "TargetProfile",
    "find_mosquitto",
    "free_port",
    "load_profile",
    "register_target_kind",
    "shipped_profiles",
    "target_from_option",
    "target_kinds",
    "terminate",
    "wait_for_port",
]

DEFAULT_TARGET = "refbroker"
_MOSQUITTO_FALLBACK = "/usr/sbin/mosquitto"


# ------------------------------------------------------------------------------------------- profile

#: Optional features a profile may switch off, with what the suite does when one is off.
KNOWN_FEATURES = {
    "retain": "retained messages (v5: Retain Available)",
    "wildcard_subscriptions": "wildcard topic filters (v5: Wildcard Subscription Available)",
    "subscription_identifiers": "Subscription Identifiers (v5: Subscription Identifier Available)",
    "shared_subscriptions": "shared subscriptions (v5: Shared Subscription Available)",
    "qos1": "QoS 1 (v5: Maximum QoS)",
    "qos2": "QoS 2 (v5: Maximum QoS)",
    "topic_alias": "Topic Aliases from the client (v5: Topic Alias Maximum)",
    "will": "Will Messages",
    "persistent_sessions": "sessions that outlive the connection (Clean Session 0 / Session Expiry > 0)",
    "empty_client_id": "zero-length client identifiers",
    "dollar_topics": "client PUBLISH to topics beginning with '$'",
}


@dataclass
class TargetProfile:
    """What a target declares about itself, read from a TOML file::

        [target]
        name = "mosquitto"            # optional: the broker's name (results, reports, known deviations)
        version = "2.0.11"            # optional: its version; "mosquitto 2.0.11" (name included) works too

        [features]                    # optional features; absent = read from the broker / assumed on
        shared_subscriptions = false
        qos2 = false

        [deviations]
        known = [13, 23]              # numbers from conformance/deviations.py that apply to this target

        [websocket]                   # optional: a WebSocket listener (MQTT over WebSocket, section 6)
        host = "127.0.0.1"            # optional: defaults to the target's host
        port = 8080

        [enhanced_auth]               # optional: an enhanced-authentication method the suite can use (5.0 4.12)
        method = "SCRAM-SHA-256"      # the only method the suite implements
        username = "conformance"
        password = "secret"

        [credentials]                 # optional: for a broker that admits no client without a user name
        username = "conformance"      # every CONNECT the suite builds carries them (User Name, Password)
        password = "secret"

        [tls]                         # optional: a TLS listener (--transport tls); [wss] likewise for
        port = 8883                   # WebSocket over TLS (--transport wss)
        host = "broker.example"       # optional: defaults to the target's host
        cafile = "ca.crt"             # optional: the CA of the server's certificate (relative to this
                                      # file); without it the system's CAs
    """

    path: str | None = None
    name: str | None = None
    version: str | None = None
    features: dict[str, bool] = field(default_factory=dict)
    known_deviations: frozenset[int] = frozenset()
    websocket: dict | None = None  # {"host": str | None, "port": int}
    enhanced_auth: dict | None = None  # {"method": str, "username": str, "password": str}
    credentials: tuple[str, str] | None = None  # (username, password) for every CONNECT
    secure_listeners: dict = field(default_factory=dict)  # "tls"/"wss" -> {"host", "port", "cafile"}

    def feature(self, name: str) -> bool | None:
        """True/False if the profile declares the feature, None if it says nothing."""
        return self.features.get(name)

    def version_string(self) -> str | None:
        """"mosquitto 2.0.11" from name + version (or a version that already starts with a name); None
        when the profile gives no version."""
        if not self.version:
            return None
        version = self.version.strip()
        if version[:1].isdigit() and self.name:
            return f"{self.name} {version}"
        return version


#: profiles shipped with the suite, chosen by name (`--target-profile=mosquitto-2.0.11`)
PROFILES_DIR = Path(__file__).parent / "profiles"


def shipped_profiles() -> list[str]:
    """Names of the profiles in conformance/profiles/ (without .toml)."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.toml"))


def resolve_profile(text: str) -> Path:
    """A profile file path, or the shipped profile of that name; ValueError when it is neither."""
    path = Path(text)
    if path.is_file() or path.suffix == ".toml" or "/" in text:  # (a directory named like a profile is not one)
        return path
    shipped = PROFILES_DIR / f"{text}.toml"
    if shipped.exists():
        return shipped
    raise ValueError(f"--target-profile={text}: no such file, and no shipped profile of that name "
                     f"(shipped: {', '.join(shipped_profiles())})")


def load_profile(path: str | os.PathLike | None) -> TargetProfile:
    if path is None:
        return TargetProfile()
    path = resolve_profile(str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read target profile {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"target profile {path} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"target", "features", "deviations", "websocket", "enhanced_auth", "credentials", "tls",
                           "wss"}
    if unknown:
        raise ValueError(f"target profile {path}: unknown section(s) {', '.join(sorted(unknown))}")
    target = data.get("target", {})
    features = data.get("features", {})
    for key, value in features.items():
        if key not in KNOWN_FEATURES:
            raise ValueError(f"target profile {path}: unknown feature {key!r}; "
                             f"known: {', '.join(sorted(KNOWN_FEATURES))}")
        if not isinstance(value, bool):
            raise ValueError(f"target profile {path}: feature {key} must be true or false")
    known = data.get("deviations", {}).get("known", [])
    if not isinstance(known, list) or not all(isinstance(n, int) for n in known):
        raise ValueError(f"target profile {path}: deviations.known must be a list of numbers")
    websocket = data.get("websocket")
    if websocket is not None:
        port = websocket.get("port")
        host = websocket.get("host")
        if set(websocket) - {"host", "port"} or not isinstance(port, int) or not 0 < port < 65536 \
                or not (host is None or isinstance(host, str)):
            raise ValueError(f"target profile {path}: [websocket] needs port = 1..65535 and an optional host string")
        websocket = {"host": host, "port": port}
    enhanced_auth = data.get("enhanced_auth")
    if enhanced_auth is not None:
        keys = {"method", "username", "password"}
        if set(enhanced_auth) != keys or not all(isinstance(v, str) for v in enhanced_auth.values()):
            raise ValueError(f"target profile {path}: [enhanced_auth] needs method, username and password (strings)")
        enhanced_auth = dict(enhanced_auth)
    credentials = data.get("credentials")
    if credentials is not None:
        if set(credentials) != {"username", "password"} or not all(isinstance(v, str) for v in credentials.values()):
            raise ValueError(f"target profile {path}: [credentials] needs username and password (strings)")
        credentials = (credentials["username"], credentials["password"])
    secure_listeners = {}
    for section in ("tls", "wss"):
        declared = data.get(section)
        if declared is None:
            continue
        port, host, cafile = declared.get("port"), declared.get("host"), declared.get("cafile")
        if set(declared) - {"host", "port", "cafile"} or not isinstance(port, int) or not 0 < port < 65536 \
                or not all(value is None or isinstance(value, str) for value in (host, cafile)):
            raise ValueError(f"target profile {path}: [{section}] needs port = 1..65535 and optional host and "
                             "cafile strings")
        if cafile is not None:
            cafile = str((path.parent / cafile).resolve())
        secure_listeners[section] = {"host": host, "port": port, "cafile": cafile}
    return TargetProfile(path=str(path), name=target.get("name"), version=target.get("version"),
                         features=dict(features), known_deviations=frozenset(known),
                         websocket=websocket, enhanced_auth=enhanced_auth, credentials=credentials,
                         secure_listeners=secure_listeners)


# ------------------------------------------------------------------------------------------ helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def terminate(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop a broker process as a user would: SIGTERM, and SIGKILL if it has not ended `timeout` s later."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for_port(host: str, port: int, timeout: float, *, alive=lambda: True) -> None:
    """Poll until `host:port` accepts a TCP connection; HarnessError after `timeout` or if not `alive()`."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    last_error: OSError | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise HarnessError(f"the broker process exited before {host}:{port} accepted connections")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last_error = exc
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise HarnessError(f"{host}:{port} did not accept connections within {timeout:g} s ({last_error})")


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, else Debian's /usr/sbin/mosquitto; None if neither exists."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return _MOSQUITTO_FALLBACK if os.access(_MOSQUITTO_FALLBACK, os.X_OK) else None


# ------------------------------------------------------------------------------------------ targets


class BrokerTarget(ABC):
    """One broker the suite can run against."""

    #: short name used in results file names and reports, e.g. "mosquitto"
    name: str = "broker"
    profile: TargetProfile
    #: why `websocket_address` / `enhanced_auth` are None (the not-applicable reason of their tests)
    no_websocket_reason = "the target offers no WebSocket listener (a target profile may declare one: [websocket])"
    no_enhanced_auth_reason = ("the target offers no enhanced-authentication method the suite knows "
                               "(a target profile may declare one: [enhanced_auth])")

    def __init__(self) -> None:
        self.profile = TargetProfile()
        #: (name, version) the broker published about itself ($SYS/broker/version), set by the suite
        self.detected_identity: tuple[str, str] | None = None

    @abstractmethod
    def start(self) -> None:
        """Make the broker reachable at `address`; raise HarnessError if it cannot be."""

    @property
    @abstractmethod
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to; valid after `start`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop what `start` started (no-op for a broker someone else runs)."""

    @property
    def websocket_address(self) -> tuple[str, int] | None:
        """(host, port) of a WebSocket listener (subprotocol "mqtt"), or None; valid after `start`."""
        declared = self.profile.websocket
        if declared is None:
            return None
        return (declared["host"] or self.address[0], declared["port"])

    @property
    def enhanced_auth(self) -> dict | None:
        """An enhanced-authentication method the suite can use, e.g. {"method": "SCRAM-SHA-256",
        "username": ..., "password": ...}; None if the target offers none."""
        return self.profile.enhanced_auth

    def endpoint(self, transport: str) -> Endpoint | None:
        """Where a client reaches the broker over `transport` (tcp, tls, ws, wss; transports.py), or None
        if the target offers no such listener; valid after `start`. The profile's [tls] / [wss] win."""
        if transport == "tcp":
            return Endpoint("tcp", *self.address)
        if transport == "ws":
            address = self.websocket_address
            return None if address is None else Endpoint("ws", *address)
        declared = self.profile.secure_listeners.get(transport)
        if declared is not None:
            return Endpoint(transport, declared["host"] or self.address[0], declared["port"], cafile=declared["cafile"])
        return self.own_secure_endpoint(transport)

    def own_secure_endpoint(self, transport: str) -> Endpoint | None:
        """A tls / wss listener the target opened itself (refbroker and mosquitto targets do)."""
        return None

    def no_transport_reason(self, transport: str) -> str:
        if transport == "ws":
            return self.no_websocket_reason
        return (f"the target {self.name} offers no {transport} listener (a target profile may declare one: "
                f"[{transport}] port = ..., cafile = ...)")

    def logs(self) -> str:
        """The broker's log so far, if the target can read it."""
        return ""

    @property
    def version_string(self) -> str:
        """e.g. "mosquitto 2.0.11": the profile's, else what the broker published about itself, else
        "unknown"."""
        declared = self.profile.version_string()
        if declared:
            return declared
        if self.detected_identity:
            return " ".join(self.detected_identity)
        return "unknown"

    def display_name(self) -> str:
        return self.profile.name or self.name

    def __enter__(self) -> BrokerTarget:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class HostPortTarget(BrokerTarget):
    """A broker that already runs at HOST:PORT. `start` only checks that it accepts connections."""

    def __init__(self, spec: str, *, connect_timeout: float = 3.0):
        super().__init__()
        self.host, self.port = parse_host_port(spec)
        self.name = f"{self.host}:{self.port}"
        self.connect_timeout = connect_timeout

    def start(self) -> None:
        wait_for_port(self.host, self.port, self.connect_timeout)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stop(self) -> None:
        pass


class MosquittoTarget(BrokerTarget):
    """The local mosquitto binary, started with a generated config on a free port of 127.0.0.1.

    Runs as a subprocess with its config, log and persistence files in a fresh temporary directory
    (world-writable, because mosquitto started as root drops to the user `mosquitto`).
    """

    name = "mosquitto"
    no_enhanced_auth_reason = ("mosquitto has no built-in enhanced-authentication method (only through plugins); "
                               "a target profile may declare one: [enhanced_auth]")

    def __init__(self, binary: str | None = None, *, extra_config: str = "", start_timeout: float = 10.0):
        super().__init__()
        # Resolved now, checked in start(): building a target never fails for a missing binary, so a
        # test session that does not use the broker is not disturbed.
        resolved = binary or find_mosquitto()
        self.binary = resolved
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.workdir: str | None = None
        self._version: str | None = None
        # TLS, WebSocket and WebSocket-over-TLS listeners beside the TCP one (--transport)
        self.secure_listeners: SuiteListeners | None = None
        self.transport_ports: dict[str, int] = {}

    @property
    def version_string(self) -> str:
        if self.profile.version_string():
            return self.profile.version_string()
        if self._version is None:
            self._version = self._read_version()
        return self._version

    def _check_binary(self) -> str:
        if self.binary is None:
            raise HarnessError("mosquitto not installed: apt-get install mosquitto")
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(f"mosquitto binary {self.binary!r} does not exist or is not executable")
        return self.binary

    def _read_version(self) -> str:
        if self.binary is None or not os.access(self.binary, os.X_OK):
            return "mosquitto (not installed)"
        try:
            result = subprocess.run([self.binary, "-h"], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HarnessError(f"cannot run {self.binary} -h: {exc}") from exc
        match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
        return f"mosquitto {match.group(1)}" if match else "mosquitto (unknown version)"

    def config_text(self, port: int, workdir: str) -> str:
        extra = self.secure_listeners.config_lines(self.transport_ports, bind=self.host) \
            if self.secure_listeners is not None else []
        return "\n".join([
            f"listener {port} {self.host}",
            "allow_anonymous true",
            f"log_dest file {workdir}/mosquitto.log",
            "log_type all",
            "connection_messages true",
            "persistence false",
            f"persistence_location {workdir}/",
            # right after the main listener: mosquitto applies per-listener keys (max_qos, mount_point ...)
            # to the listener above them; the TLS and WebSocket listeners for --transport come after
            self.extra_config,
            *extra,
            "",
        ])

    def start(self) -> None:
        if self.process is not None:
            return
        self._check_binary()
        self.version_string  # noqa: B018 - read it now, before any test needs it
        if self.workdir is None:  # a restart (stop, then start) keeps the folder that cleanup() removes
            self.workdir = tempfile.mkdtemp(prefix="conformance-mosquitto-")
            os.chmod(self.workdir, 0o777)
            self.secure_listeners = SuiteListeners(Path(self.workdir) / "tls")
        try:
            self._start_process()
        except HarnessError:
            self.cleanup()  # a start that fails leaves no folder behind (the error quotes the log)
            raise

    def _start_process(self) -> None:
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port may be taken between choosing and binding it
            port = free_port(self.host)
            self.transport_ports = {transport: free_port(self.host) for transport in ("tls", "ws", "wss")}
            config = Path(self.workdir) / "mosquitto.conf"
            config.write_text(self.config_text(port, self.workdir), encoding="utf-8")
            os.chmod(config, 0o644)
            stdout = open(Path(self.workdir) / "stdout.log", "ab")  # noqa: SIM115 - kept open for the process
            try:
                process = subprocess.Popen([self.binary, "-c", str(config)], stdout=stdout,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as exc:
                stdout.close()
                raise HarnessError(f"cannot start {self.binary}: {exc}") from exc
            stdout.close()
            try:
                # every listener, the TLS and WebSocket ones too (mosquitto opens them one after the other)
                for listening in (port, *self.transport_ports.values()):
                    wait_for_port(self.host, listening, self.start_timeout,
                                  alive=lambda process=process: process.poll() is None)
            except HarnessError as exc:
                last_error = exc
                terminate(process)
                if "Address already in use" in self.logs():
                    continue
                raise HarnessError(f"mosquitto did not start: {exc}\n{self.logs()[-2000:]}") from exc
            self.process, self.port = process, port
            return
        raise HarnessError(f"mosquitto did not start after 3 attempts: {last_error}\n{self.logs()[-2000:]}")

    @property
    def address(self) -> tuple[str, int]:
        if self.port is None:
            raise HarnessError("mosquitto is not started")
        return (self.host, self.port)

    @property
    def websocket_address(self) -> tuple[str, int] | None:
        if self.profile.websocket is not None:
            return super().websocket_address
        return (self.host, self.transport_ports["ws"]) if self.process is not None else None

    def own_secure_endpoint(self, transport: str) -> Endpoint | None:
        if self.process is None or self.secure_listeners is None:
            return None
        return self.secure_listeners.endpoint(transport, self.host, self.transport_ports[transport])

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
            self.process = None

    def logs(self) -> str:
        if not self.workdir:
            return ""
        texts = []
        for name in ("stdout.log", "mosquitto.log"):
            path = Path(self.workdir) / name
            if path.exists():
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(texts)

    def cleanup(self) -> None:
        """Stop and remove the temporary directory (logs included)."""
        self.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


class RefbrokerTarget(BrokerTarget):
    """The project's reference broker, embedded in this process on a free port."""

    name = "refbroker"

    #: the SCRAM-SHA-256 user RefbrokerTarget configures (plain password form of `scram_users`)
    SCRAM_USER = ("conformance", "conformance-secret")

    def __init__(self, host: str = "127.0.0.1", config: tuple[tuple[str, str], ...] = ()):
        super().__init__()
        self.host = host
        self.config = config  # extra (key, value) config lines, from refbroker:KEY=VALUE,...
        self.broker = None
        self.workdir: str | None = None
        self._websocket_port: int | None = None
        self.secure_listeners: SuiteListeners | None = None
        self._transport_ports: dict[str, int] = {}

    def config_text(self, workdir: str) -> str:
        """Extra listeners on top of the plain TCP one: WebSocket, TLS, WebSocket over TLS (in this order:
        `listener 0` takes a free port, and the embedded broker lists them in config order), and
        SCRAM-SHA-256 users."""
        users = Path(workdir) / "scram_users"
        users.write_text(f"{self.SCRAM_USER[0]}:{self.SCRAM_USER[1]}\n", encoding="utf-8")
        self.secure_listeners = SuiteListeners(Path(workdir) / "tls")
        return "\n".join([
            "allow_anonymous true",
            f"scram_users {users}",
            *(f"{key} {value}" for key, value in self.config),
            *self.secure_listeners.config_lines({"ws": 0, "tls": 0, "wss": 0}, bind=self.host),
            "",
        ])

    @staticmethod
    def _embedded_class():
        try:
            from refbroker.embedded import EmbeddedBroker
        except ImportError as exc:
            raise HarnessError(f"refbroker is not available yet: cannot import refbroker.embedded.EmbeddedBroker "
                               f"({exc}); use --broker=mosquitto or --broker=HOST:PORT") from exc
        return EmbeddedBroker

    def start(self) -> None:
        if self.broker is not None:
            return
        embedded = self._embedded_class()  # first: without refbroker nothing is made
        if self.workdir is None:  # a restart (stop, then start) keeps the folder that cleanup() removes
            self.workdir = tempfile.mkdtemp(prefix="conformance-refbroker-")
        config = Path(self.workdir) / "refbroker.conf"
        try:
            config.write_text(self.config_text(self.workdir), encoding="utf-8")
            broker = embedded(host=self.host, port=0, config=str(config))
            broker.start()
        except Exception as exc:
            self.cleanup()  # a start that fails leaves no folder behind
            if isinstance(exc, HarnessError):
                raise
            raise HarnessError(f"refbroker did not start: {exc}") from exc
        self.broker = broker
        ports = list(getattr(broker, "listener_ports", []))
        self._transport_ports = dict(zip(("ws", "tls", "wss"), ports))
        self._websocket_port = self._transport_ports.get("ws")

    @property
    def websocket_address(self) -> tuple[str, int] | None:
        if self.profile.websocket is not None:
            return super().websocket_address
        return None if self._websocket_port is None else (self.host, self._websocket_port)

    def own_secure_endpoint(self, transport: str) -> Endpoint | None:
        port = self._transport_ports.get(transport)
        if self.broker is None or port is None or self.secure_listeners is None:
            return None
        return self.secure_listeners.endpoint(transport, self.host, port)

    @property
    def enhanced_auth(self) -> dict | None:
        if self.profile.enhanced_auth is not None:
            return self.profile.enhanced_auth
        return {"method": "SCRAM-SHA-256", "username": self.SCRAM_USER[0], "password": self.SCRAM_USER[1]}

    def cleanup(self) -> None:
        """Stop and remove the temporary directory (config and SCRAM users)."""
        self.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def address(self) -> tuple[str, int]:
        if self.broker is None:
            raise HarnessError("refbroker is not started")
        return (self.host, self.broker.port)

    def stop(self) -> None:
        if self.broker is not None:
            try:
                self.broker.stop()
            finally:
                self.broker = None

    def logs(self) -> str:
        if self.broker is None:
            return ""
        logs = getattr(self.broker, "logs", None)
        return logs() if callable(logs) else ""

    @property
    def version_string(self) -> str:
        if self.profile.version_string():
            return self.profile.version_string()
        version = getattr(self.broker, "version", None)
        if version is None:
            try:
                import refbroker
                version = getattr(refbroker, "__version__", None)
            except ImportError:
                version = None
        if not version:
            version = "refbroker"
        version = str(version)
        version = version if version.startswith("refbroker") else f"refbroker {version}"
        return version + "".join(f" ({key} {value})" for key, value in self.config)


# ------------------------------------------------------------------------------------------ parsing


def parse_host_port(spec: str) -> tuple[str, int]:
    """"HOST:PORT" (or "[v6addr]:PORT") -> (host, port); ValueError otherwise."""
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host or not port_text:
        raise ValueError(f"expected HOST:PORT, got {spec!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {port_text!r} in {spec!r}: expected a number from 1 to 65535")
    return host, int(port_text)


#: entry-point group through which other packages register target kinds
TARGET_KIND_GROUP = "mqtt_conformance.targets"
_registered_kinds: dict[str, Callable[[str], BrokerTarget]] = {}


def register_target_kind(prefix: str, factory: Callable[[str], BrokerTarget]) -> None:
    """Make `--broker=PREFIX:...` build its target with `factory(text)` (text is the whole option)."""
    _registered_kinds[prefix] = factory


def target_kinds() -> dict[str, Callable[[str], BrokerTarget]]:
    """Every registered target kind, prefix -> factory: entry points first, run-time registrations over them."""
    kinds: dict[str, Callable[[str], BrokerTarget]] = {}
    for entry in importlib.metadata.entry_points(group=TARGET_KIND_GROUP):
        kinds[entry.name] = _lazy(entry)
    kinds.update(_registered_kinds)
    return kinds


def _lazy(entry: importlib.metadata.EntryPoint) -> Callable[[str], BrokerTarget]:
    def build(text: str) -> BrokerTarget:
        try:
            factory = entry.load()
        except ImportError as exc:
            raise ValueError(f"--broker={text}: the package that provides {entry.name}: targets cannot be "
                             f"imported ({exc}); install the project with its 'interop' extra") from None
        return factory(text)
    return build


def _config_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """"refbroker:mosquitto_compat=2.1.2,reason_strings=true" -> (("mosquitto_compat", "2.1.2"), ...)."""
    pairs = []
    for item in text.partition(":")[2].split(","):
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ValueError(f"--broker={text}: expected refbroker:KEY=VALUE[,KEY=VALUE...] (refbroker config "
                             f"keys, e.g. refbroker:mosquitto_compat=2.1.2), not {item!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def target_from_option(text: str | None, *, profile: TargetProfile | None = None) -> BrokerTarget:
    """Build the target named by a `--broker` value (see the module docstring). ValueError if unknown."""
    text = (text or DEFAULT_TARGET).strip()
    if text == "refbroker":
        target: BrokerTarget = RefbrokerTarget()
    elif text.startswith("refbroker:"):
        target = RefbrokerTarget(config=_config_pairs(text))
    elif text == "mosquitto":
        target = MosquittoTarget()
    elif text.startswith("mosquitto:"):
        path = text[len("mosquitto:"):]
        if not path:
            raise ValueError("--broker=mosquitto:PATH needs the path of the mosquitto binary")
        target = MosquittoTarget(path)
    elif (kind := text.partition(":")[0]) in (kinds := target_kinds()):
        target = kinds[kind](text)  # e.g. docker:mosquitto-2.0.21, registered by interop/
    elif ":" in text:
        try:
            target = HostPortTarget(text)
        except ValueError as exc:
            raise ValueError(f"invalid --broker {text!r}: {exc}") from None
    else:
        registered = "".join(f", {prefix}:..." for prefix in sorted(target_kinds()))
        raise ValueError(f"unknown --broker {text!r}: expected refbroker, mosquitto, mosquitto:/path/to/binary"
                         f"{registered} or HOST:PORT")
    # A profile the user names wins; without one, a target that brings its own (the interop brokers load their
    # shipped profile, e.g. rabbitmq's qos2 = false) keeps it.
    if profile is not None and (profile.path is not None or target.profile.path is None):
        target.profile = profile
    return target

"""A broker target that runs mosquitto in a Docker container (see interop/images.py for the images).

    target = DockerMosquittoTarget("mqtt-toolkit/mosquitto:2.0.21")
    target.start()              # engine (started if needed), image (built if known and missing), container
    host, port = target.address # 127.0.0.1 and the host port Docker published 1883 on
    target.version_string       # "mosquitto 2.0.21 (docker trixie)"
    target.logs()               # the broker's log (log_type all, to stderr)
    target.stop()               # removes the container

`start()` returns only once the broker has answered a real CONNECT with a CONNACK: a port published by
Docker accepts TCP connections (docker-proxy) before the broker inside listens, so a TCP probe says
nothing.

Beside MQTT on 1883 the container has TLS (8883), WebSocket (8080) and WebSocket-over-TLS (8081)
listeners with a certificate made for the run (conformance.transports.SuiteListeners), published on
ports Docker picks: `--transport tls|ws|wss` runs the suite over them (`endpoint(transport)`).

`docker_target_from_option("docker:mosquitto-2.0.21")` builds a target from a `--broker` value.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

from conformance.client import HarnessError
from conformance.targets import BrokerTarget
from conformance.transports import Endpoint, SuiteListeners
from refbroker.protocol import MQTT_3_1_1, Connack, Connect, Disconnect, MQTTError, StreamDecoder

from .docker_engine import DockerUnavailable, EngineHandle, shared_engine
from .images import IMAGES, LABEL_SUITE, LABEL_VERSION, ImageBuildError, build_image, find_image, spec_for

CONTAINER_PORT = 1883
#: the listeners for --transport inside the container (published on ports Docker picks)
TRANSPORT_PORTS = {"tls": 8883, "ws": 8080, "wss": 8081}
CONFIG_DIR = "/mqtt-toolkit"  # where the generated config is mounted, read-only, inside the container
CONTAINER_LABEL = "org.mqtt-toolkit.target"


class DockerTargetError(HarnessError):
    """The Docker target could not start (no engine, no image, broker did not come up)."""


def probe_connack(host: str, port: int, timeout: float = 2.0, client_id: str = "mqtt-toolkit-probe",
                  protocol_level: int = MQTT_3_1_1) -> Connack:
    """Send a CONNECT (3.1.1 unless `protocol_level` says otherwise) and return the broker's CONNACK;
    OSError/MQTTError/TimeoutError otherwise. Sends DISCONNECT before closing, so the probe leaves no will
    and no session behind."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(Connect(client_id=client_id, protocol_level=protocol_level, clean_start=True,
                             keep_alive=10).encode(protocol_level))
        decoder = StreamDecoder(protocol_level)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("the connection closed before a CONNACK")
            for packet in decoder.feed(data):
                if isinstance(packet, Connack):
                    try:
                        sock.sendall(Disconnect().encode(protocol_level))
                    except OSError:
                        pass
                    return packet
                raise MQTTError(f"expected CONNACK, got {packet.name}")
        raise TimeoutError("no CONNACK")


class DockerMosquittoTarget(BrokerTarget):
    """mosquitto in a container from `image_tag`, published on 127.0.0.1 at a port Docker picks."""

    #: open the suite's TLS, WebSocket and WSS listeners (a subclass with listeners of its own says False)
    suite_listeners = True

    def __init__(self, image_tag: str, *, engine: EngineHandle | None = None, extra_config: str = "",
                 start_timeout: float = 30.0, build_missing: bool = True):
        super().__init__()
        self.image_tag = image_tag
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.build_missing = build_missing  # build a known image (interop/images.py) that is not there yet
        self.name = "mosquitto-" + (image_tag.rsplit(":", 1)[-1] if ":" in image_tag else image_tag)
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.container = None
        self.workdir: str | None = None
        self._engine = engine
        self._labels: dict[str, str] = {}
        self._final_logs = ""
        self.secure_listeners: SuiteListeners | None = None  # certificates of the TLS listeners
        self.transport_ports: dict[str, int] = {}  # transport -> host port Docker published it on

    # ---------------------------------------------------------------- configuration

    def extra_listeners(self) -> list[str]:
        """The TLS, WebSocket and WebSocket-over-TLS listeners (certificates in the mounted directory)."""
        if self.secure_listeners is None:
            return []
        return self.secure_listeners.config_lines(TRANSPORT_PORTS, f"{CONFIG_DIR}/tls")

    def port_bindings(self) -> dict[str, tuple[str, int | None]]:
        """Container port -> (host address, host port or None for one Docker picks)."""
        ports = [CONTAINER_PORT, *(TRANSPORT_PORTS.values() if self.secure_listeners is not None else ())]
        return {f"{port}/tcp": (self.host, None) for port in ports}

    def volumes(self) -> dict[str, dict[str, str]]:
        return {self.workdir: {"bind": CONFIG_DIR, "mode": "ro"}}

    def config_text(self) -> str:
        """The mosquitto.conf the container runs with."""
        return "\n".join([
            "# written by mqtt-conformance-toolkit (interop/docker_target.py)",
            f"listener {CONTAINER_PORT}",
            "allow_anonymous true",
            # right after the main listener: mosquitto applies per-listener keys (max_qos, max_connections,
            # mount_point ...) to the listener above them, and the suite talks to this one
            self.extra_config,
            *self.extra_listeners(),
            "persistence false",
            # stderr, not stdout: mosquitto 2.0.11 block-buffers stdout when it is not a terminal, so its
            # log would reach `docker logs` only at exit (or never, if the container is killed).
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "",
        ])

    # ---------------------------------------------------------------- lifecycle

    def _engine_handle(self) -> EngineHandle:
        if self._engine is None:
            try:
                self._engine = shared_engine()
            except DockerUnavailable as exc:
                raise DockerTargetError(f"Docker engine not available: {exc}") from None
        return self._engine

    def _image(self, engine: EngineHandle):
        image = find_image(engine, self.image_tag)
        if image is not None:
            return image
        try:
            spec = spec_for(self.image_tag)
        except KeyError:
            raise DockerTargetError(f"image {self.image_tag} is not in the Docker engine, and it is not one "
                                    f"this toolkit can build ({', '.join(s.tag for s in IMAGES.values())})") from None
        if not self.build_missing:
            raise DockerTargetError(f"image {self.image_tag} is not built: python -m interop images build {spec.suite}")
        try:
            build_image(spec.suite, engine=engine)
        except ImageBuildError as exc:
            raise DockerTargetError(f"cannot build {self.image_tag}: {exc}") from None
        image = find_image(engine, self.image_tag)
        if image is None:
            raise DockerTargetError(f"image {self.image_tag} is still missing after building it")
        return image

    def start(self) -> None:
        if self.container is not None:
            return
        import docker.errors

        engine = self._engine_handle()
        image = self._image(engine)
        self._labels = dict(image.labels or {})
        self._final_logs = ""
        # mosquitto starts as root and drops to the user `mosquitto`: the directory and the file must be
        # readable by everyone (mkdtemp makes 0700 directories).
        self.workdir = tempfile.mkdtemp(prefix="mqtt-toolkit-docker-")
        os.chmod(self.workdir, 0o755)
        if self.suite_listeners:
            self.secure_listeners = SuiteListeners(Path(self.workdir) / "tls")
        config = Path(self.workdir) / "mosquitto.conf"
        config.write_text(self.config_text(), encoding="utf-8")
        os.chmod(config, 0o644)
        name = f"mqtt-toolkit-{self.name}-{uuid.uuid4().hex[:8]}".replace(":", "-").replace("/", "-")
        try:
            self.container = engine.client.containers.run(
                self.image_tag, ["/usr/sbin/mosquitto", "-c", f"{CONFIG_DIR}/mosquitto.conf"],
                name=name, detach=True, labels={CONTAINER_LABEL: self.name},
                volumes=self.volumes(),
                ports=self.port_bindings(),  # a host port None: Docker picks a free one
            )
        except docker.errors.DockerException as exc:
            self._cleanup_workdir()
            raise DockerTargetError(f"cannot run a container from {self.image_tag}: {exc}") from None
        try:
            self.port = self._published_port()
            if self.suite_listeners:
                self.transport_ports = {transport: self._published_port(port)
                                        for transport, port in TRANSPORT_PORTS.items()}
            self._wait_for_connack()
        except BaseException:
            self.stop()
            raise

    def _published_port(self, container_port: int = CONTAINER_PORT) -> int:
        deadline = time.monotonic() + 10
        while True:
            self.container.reload()
            bindings = (self.container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
                f"{container_port}/tcp") or []
            for binding in bindings:
                if binding.get("HostIp") in (self.host, "", "0.0.0.0") and binding.get("HostPort"):
                    return int(binding["HostPort"])
            if self.container.status not in ("created", "running") or time.monotonic() > deadline:
                raise DockerTargetError(f"the container of {self.image_tag} has no published port "
                                        f"(status {self.container.status})\n{self._log_tail()}")
            time.sleep(0.1)

    def _wait_for_connack(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self.container.reload()
            if self.container.status not in ("created", "running"):
                raise DockerTargetError(f"mosquitto in {self.image_tag} exited (status {self.container.status}, "
                                        f"exit code {self.container.attrs['State'].get('ExitCode')}) before "
                                        f"accepting MQTT\n{self._log_tail()}")
            try:
                connack = probe_connack(self.host, self.port, timeout=2.0)
            except (OSError, MQTTError, TimeoutError) as exc:
                last_error = exc
                time.sleep(0.1)
                continue
            if connack.reason_code != 0:
                raise DockerTargetError(f"mosquitto in {self.image_tag} refused the probe CONNECT "
                                        f"(CONNACK {connack.reason_code})\n{self._log_tail()}")
            return
        raise DockerTargetError(f"mosquitto in {self.image_tag} did not answer CONNECT on {self.host}:{self.port} "
                                f"within {self.start_timeout:g} s ({last_error})\n{self._log_tail()}")

    @property
    def websocket_address(self) -> tuple[str, int] | None:
        if self.profile.websocket is not None:
            return super().websocket_address
        port = self.transport_ports.get("ws") if self.container is not None else None
        return None if port is None else (self.host, port)

    def own_secure_endpoint(self, transport: str) -> Endpoint | None:
        port = self.transport_ports.get(transport) if self.container is not None else None
        if port is None or self.secure_listeners is None:
            return None
        return self.secure_listeners.endpoint(transport, self.host, port)

    @property
    def address(self) -> tuple[str, int]:
        if self.port is None or self.container is None:
            raise HarnessError(f"{self.name} is not started")
        return (self.host, self.port)

    def stop(self) -> None:
        """Remove the container (its logs are kept for `logs()`) and the config directory."""
        container, self.container = self.container, None
        self.port = None
        self.transport_ports = {}
        if container is not None:
            try:
                container.stop(timeout=5)  # SIGTERM first: mosquitto logs its shutdown
            except Exception:  # noqa: BLE001 - already gone or the engine went away; remove() below decides
                pass
            self._final_logs = self._read_logs(container)
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone, or the engine went away: nothing left to stop
                pass
        self._cleanup_workdir()

    def _cleanup_workdir(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # ---------------------------------------------------------------- what it tells

    @staticmethod
    def _read_logs(container) -> str:
        try:
            return container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        except Exception:  # noqa: BLE001
            return ""

    def logs(self) -> str:
        if self.container is not None:
            return self._read_logs(self.container)
        return self._final_logs

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def display_name(self) -> str:
        """"mosquitto-2.0.11": the image's version, so that the three images' runs keep apart (their shipped
        profiles all name the broker "mosquitto")."""
        return self.name

    @property
    def version_string(self) -> str:
        declared = self.profile.version_string()  # "mosquitto 2.0.11", the spelling deviations match on
        if declared:
            return declared
        labels = self._labels
        if not labels:  # not started yet: a known image's table entry says what it will be
            try:
                spec = spec_for(self.image_tag)
                labels = {LABEL_VERSION: spec.mosquitto_version, LABEL_SUITE: spec.suite}
            except KeyError:
                pass
        version = labels.get(LABEL_VERSION)
        if version is None:  # an image not built here: the broker says its version when it starts
            match = re.search(r"mosquitto version (\S+) (?:starting|running)", self.logs())
            version = match.group(1) if match else None
        suite = labels.get(LABEL_SUITE)
        where = f"docker {suite}" if suite else f"docker {self.image_tag}"
        return f"mosquitto {version or '(unknown version)'} ({where})"

    def __repr__(self) -> str:
        return f"<DockerMosquittoTarget {self.image_tag}>"


def docker_target_from_option(text: str) -> DockerMosquittoTarget:
    """A target from a `--broker` value:

        docker:mosquitto-2.0.21               a known image by mosquitto version (also docker:2.0.21)
        docker:trixie                         a known image by Debian suite
        docker:mqtt-toolkit/mosquitto:2.0.21  any image by tag (it must have /usr/sbin/mosquitto)

    Raises ValueError for anything else. Nothing is contacted here: the engine and the image are
    needed only by `start()`.
    """
    prefix = "docker:"
    if not text.startswith(prefix):
        raise ValueError(f"not a Docker target: {text!r} (expected docker:mosquitto-VERSION, docker:SUITE "
                         "or docker:IMAGE_TAG)")
    rest = text[len(prefix):].strip()
    if not rest:
        known = ", ".join(f"docker:mosquitto-{s.mosquitto_version}" for s in IMAGES.values())
        raise ValueError(f"--broker=docker: needs an image, e.g. {known}")
    try:
        return DockerMosquittoTarget(spec_for(rest).tag)
    except KeyError:
        pass
    if rest.startswith("mosquitto-") and "/" not in rest and ":" not in rest:
        known = ", ".join(s.mosquitto_version for s in IMAGES.values())
        raise ValueError(f"no image for {rest!r}: known mosquitto versions are {known} "
                         f"(or give an image tag: docker:REPOSITORY:TAG)")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?", rest):
        raise ValueError(f"{rest!r} is not a Docker image reference")
    return DockerMosquittoTarget(rest, build_missing=False)

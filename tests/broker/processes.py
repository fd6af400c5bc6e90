"""refbroker and mosquitto as real processes, started from the same mosquitto.conf text, for the tests
that check a key or a signal on both brokers (refbroker must do what mosquitto does).

    with BrokerProcess("mosquitto", tmp_path, "listener {port} 127.0.0.1\\nallow_anonymous true\\n") as broker:
        client = Client(broker.port)

The config text may use {port} (a free port), {dir} (the broker's own directory, world-writable
and outside pytest's private tmp_path: mosquitto started as root drops to the user `mosquitto`,
which must reach its files) and {port2} (a second free port). Put the files the config names in {dir}.
refbroker runs as `python -m refbroker -c FILE`; mosquitto is Debian's binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

import pytest

from conformance.targets import find_mosquitto, free_port
from refbroker.protocol import Connect, MQTTError, Packet, Publish, StreamDecoder, Subscribe, Subscription

KINDS = ("refbroker", "mosquitto")


def mosquitto_or_skip() -> str:
    """Debian's mosquitto binary; skips the calling test, naming the package, where it is missing (CI, which
    installs it, turns such a skip into a failure: tests/conftest.py)."""
    binary = find_mosquitto()
    if binary is None:
        pytest.skip("mosquitto not installed: apt-get install mosquitto")
    return binary


def require(kind: str) -> None:
    if kind == "mosquitto":
        mosquitto_or_skip()


class BrokerProcess:
    def __init__(self, kind: str, tmp_path: Path, config: str, *, name: str | None = None, arguments=()):
        require(kind)
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"dropin-{name or kind}-"))
        os.chmod(self.dir, 0o777)
        weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.port = free_port()
        self.port2 = free_port()
        self.config_path = self.dir / "broker.conf"
        self.write_config(config)
        self.arguments = list(arguments)
        self.prefix: list[str] = []  # run the broker through this (e.g. unshare ... for a private /dev/log)
        self.process: subprocess.Popen | None = None
        self.output_path = self.dir / "stdout.log"
        self.error_path = self.dir / "stderr.log"

    def write_config(self, config: str) -> None:
        self.config_path.write_text(config.format(port=self.port, port2=self.port2, dir=self.dir))
        # the ports start() waits for: every one the config names (a broker binds its listeners one by one)
        self.ports = [self.port] + ([self.port2] if "{port2}" in config else [])
        os.chmod(self.config_path, 0o644)

    @property
    def command(self) -> list[str]:
        if self.kind == "refbroker":
            return [sys.executable, "-m", "refbroker", "-c", str(self.config_path), *self.arguments]
        return [find_mosquitto(), "-c", str(self.config_path), *self.arguments]

    def start(self, *, wait_for: int | str | None = None, timeout: float = 15) -> BrokerProcess:
        """Start; return once `wait_for` (a port, a Unix socket path; default: every port of the config)
        accepts connections."""
        output = open(self.output_path, "ab")  # noqa: SIM115 - the process keeps them
        errors = open(self.error_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(self.prefix + self.command, stdout=output, stderr=errors,
                                        stdin=subprocess.DEVNULL)
        output.close()
        errors.close()
        targets = list(self.ports) if wait_for is None else [wait_for]
        deadline = time.monotonic() + timeout
        while targets and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.kind} exited with {self.process.returncode}:\n{self.output()}")
            try:
                connect_socket(targets[0]).close()
                targets.pop(0)
            except OSError:
                time.sleep(0.05)
        if targets:
            raise AssertionError(f"{self.kind} did not listen on {targets[0]} within {timeout} s:\n{self.output()}")
        return self

    def run(self, timeout: float = 15) -> subprocess.CompletedProcess:
        """Run to completion (for configs that must stop the start)."""
        return subprocess.run(self.command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, and wait: a clean stop."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            for child in self._children() if self.prefix else ():
                os.kill(child, signal.SIGTERM)  # the broker itself, under the prefix command
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        self.process = None
        return code

    def _children(self) -> list[int]:
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as children:
                return [int(pid) for pid in children.read().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL: no chance to save anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the broker wrote to stdout and stderr."""
        return self.stdout() + self.stderr()

    def stdout(self) -> str:
        return self.output_path.read_text(errors="replace") if self.output_path.exists() else ""

    def stderr(self) -> str:
        return self.error_path.read_text(errors="replace") if self.error_path.exists() else ""

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def connect_socket(target: int | str, timeout: float = 5) -> socket.socket:
    if isinstance(target, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(target)
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection(("127.0.0.1", target), timeout=timeout)


class Client:
    """A small blocking MQTT client made of refbroker.protocol (packets checked byte by byte)."""

    def __init__(self, target: int | str, version: int = 4, timeout: float = 5):
        self.socket = connect_socket(target, timeout)
        self.version = version
        self.decoder = StreamDecoder(version)
        self.pending: list[Packet] = []
        self.next_id = 1

    def send(self, packet: Packet) -> None:
        self.socket.sendall(packet.encode(self.version))

    def receive(self, timeout: float = 5) -> Packet | None:
        """The next packet; None if the connection closed or nothing came within `timeout`."""
        self.socket.settimeout(timeout)
        while not self.pending:
            try:
                data = self.socket.recv(65536)
            except (TimeoutError, socket.timeout):
                return None
            except OSError:
                return None
            if not data:
                return None
            try:
                self.pending += self.decoder.feed(data)
            except MQTTError:
                return None
        return self.pending.pop(0)

    def connect(self, client_id: str, **fields) -> Packet | None:
        self.send(Connect(client_id=client_id, protocol_level=self.version, **fields))
        return self.receive()

    def subscribe(self, *filters: tuple[str, int] | str, **properties) -> Packet | None:
        subscriptions = [Subscription(f, 0) if isinstance(f, str) else Subscription(*f) for f in filters]
        from refbroker.protocol import Properties
        self.send(Subscribe(self._id(), subscriptions, Properties(**properties)))
        return self.receive()

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Packet | None:
        """PUBLISH; for QoS 1/2 returns the PUBACK/PUBREC."""
        self.send(Publish(topic, payload, qos, retain, packet_id=self._id() if qos else None))
        return self.receive() if qos else None

    def messages(self, timeout: float = 1.0, count: int | None = None, duration: float | None = None) -> list[Publish]:
        """The PUBLISHes that arrive until nothing comes for `timeout` s, `count` have come, or
        `duration` s have passed; QoS 1 and 2 are acknowledged."""
        from refbroker.protocol import Puback, Pubcomp, Pubrec, Pubrel
        received = []
        end = None if duration is None else time.monotonic() + duration
        while count is None or len(received) < count:
            if end is not None and time.monotonic() >= end:
                break
            packet = self.receive(timeout if end is None else max(0.01, min(timeout, end - time.monotonic())))
            if packet is None:
                break
            if isinstance(packet, Publish):
                received.append(packet)
                if packet.qos == 1:
                    self.send(Puback(packet.packet_id))
                elif packet.qos == 2:
                    self.send(Pubrec(packet.packet_id))
            elif isinstance(packet, Pubrel):
                self.send(Pubcomp(packet.packet_id))
        return received

    def _id(self) -> int:
        self.next_id = self.next_id % 65535 + 1
        return self.next_id

    def close(self) -> None:
        self.socket.close()

"""What the interop matrix needs from a broker beyond conformance's `BrokerTarget`.

`InteropTarget` adds, for every broker kind of the matrix:

- `capabilities`: the MQTT versions and transports it offers (TCP, TLS with and without a client
  certificate, WebSocket) and whether it can be restarted; the optional MQTT features it lacks are in
  its target profile, one of the profiles the conformance suite ships (conformance/profiles/NAME.toml,
  chosen by name as with `--target-profile=NAME`);
- `tls_files`: set before `start()` to get a TLS listener (`tls_address`) with that server certificate;
- `restart()`: stop and start again on the same ports (a client reconnects to the same address);
- `unavailable()`: None, or why the broker cannot run on this machine and how to get it.

`ProcessBrokerTarget` runs a broker as a child process in its own process group, with its config and
log in a temporary directory, and waits until it answers a real CONNECT with a CONNACK.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

from conformance.client import HarnessError
from conformance.targets import PROFILES_DIR, BrokerTarget, free_port, load_profile
from refbroker.protocol import MQTTError

from ..docker_target import probe_connack
from ..tlsfiles import TlsFiles

@dataclass(frozen=True)
class Capabilities:
    versions: tuple[str, ...] = ("3.1.1", "5.0")
    websocket: bool = True
    tls: bool = True
    client_certificate: bool = True  # the broker can require and verify a client certificate
    restart: bool = True
    #: (username, password) every client must send, for a broker that admits no anonymous client
    credentials: tuple[str, str] | None = None


def profile_path(name: str) -> Path:
    """The shipped profile NAME (conformance/profiles/NAME.toml, `--target-profile=NAME` in the suite)."""
    return PROFILES_DIR / f"{name}.toml"


class InteropTarget(BrokerTarget):
    capabilities = Capabilities()
    #: the properties of the broker's v5 CONNACK, read by the runner once the broker runs (interop/probe.py)
    v5_connack: dict | None = None
    #: the name of the broker's shipped profile (conformance/profiles/NAME.toml)
    profile_name = ""

    def __init__(self) -> None:
        super().__init__()
        self.tls_files: TlsFiles | None = None
        if self.profile_name and profile_path(self.profile_name).exists():
            self.profile = load_profile(profile_path(self.profile_name))

    def unavailable(self) -> str | None:
        """None if the broker can run here; else why not and how to get it."""
        return None

    @property
    def tls_address(self) -> tuple[str, int] | None:
        return None

    @property
    def mtls_address(self) -> tuple[str, int] | None:
        """A TLS listener that requires a client certificate signed by the CA of `tls_files`."""
        return None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()


class ProcessBrokerTarget(InteropTarget):
    """A broker run as a child process on 127.0.0.1 ports chosen once (kept across `restart`)."""

    host = "127.0.0.1"
    start_timeout = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.workdir: str | None = None
        self.port: int | None = None
        self.ws_port: int | None = None
        self.tls_port: int | None = None
        self.mtls_port: int | None = None  # TLS that requires a client certificate
        self.process: subprocess.Popen | None = None
        self._log_file: Path | None = None

    # ------------------------------------------------------------------ what a kind provides

    @abstractmethod
    def command(self) -> list[str]:
        """The command line; may write config files into self.workdir (ports are chosen already)."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def after_stop(self) -> None:
        """Clean up helpers the broker leaves running (e.g. Erlang's epmd)."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.process is not None:
            return
        reason = self.unavailable()
        if reason:
            raise HarnessError(f"{self.name} cannot run here: {reason}")
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix=f"interop-{self.name}-")
            os.chmod(self.workdir, 0o755)
            self.port = free_port(self.host)
            if self.capabilities.websocket:
                self.ws_port = free_port(self.host)
            if self.capabilities.tls and self.tls_files is not None:
                self.tls_port = free_port(self.host)
                if self.capabilities.client_certificate:
                    self.mtls_port = free_port(self.host)
            self._log_file = Path(self.workdir) / "broker.log"
        command = self.command()
        with open(self._log_file, "ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            try:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                cwd=self.workdir, env=self.environment(), start_new_session=True)
            except OSError as exc:
                raise HarnessError(f"cannot start {self.name}: {exc}") from None
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"{self.name} exited with code {self.process.returncode} before accepting MQTT"
                                   f"\n{self._tail()}")
            try:
                connack = probe_connack(self.host, self.port, timeout=2.0, client_id="interop-probe",
                                        protocol_level=4 if "3.1.1" in self.capabilities.versions else 5)
            except (OSError, MQTTError, TimeoutError) as exc:
                last = exc
                time.sleep(0.1)
                continue
            if connack.reason_code == 5 and self.capabilities.credentials:
                return  # it answers MQTT; the probe sends no credentials, and this broker needs them
            if connack.reason_code != 0:
                raise HarnessError(f"{self.name} refused the probe CONNECT (CONNACK {connack.reason_code})")
            return
        raise HarnessError(f"{self.name} did not answer CONNECT on {self.host}:{self.port} within "
                           f"{self.start_timeout:g} s ({last})\n{self._tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        if process is not None:
            self.after_stop()

    def cleanup(self) -> None:
        self.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # ------------------------------------------------------------------ addresses and logs

    @property
    def address(self) -> tuple[str, int]:
        if self.port is None:
            raise HarnessError(f"{self.name} is not started")
        return (self.host, self.port)

    @property
    def websocket_address(self) -> tuple[str, int] | None:
        return (self.host, self.ws_port) if self.ws_port else None

    @property
    def tls_address(self) -> tuple[str, int] | None:
        return (self.host, self.tls_port) if self.tls_port else None

    @property
    def mtls_address(self) -> tuple[str, int] | None:
        return (self.host, self.mtls_port) if self.mtls_port else None

    def logs(self) -> str:
        if self._log_file and self._log_file.exists():
            return self._log_file.read_text(encoding="utf-8", errors="replace")
        return ""

    def _tail(self, lines: int = 20) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    def write(self, name: str, text: str) -> str:
        """Write a config file into the work directory (world-readable) and return its path."""
        path = Path(self.workdir) / name
        path.write_text(text, encoding="utf-8")
        os.chmod(path, 0o644)
        return str(path)

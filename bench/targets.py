"""What the benchmark runs against: refbroker and mosquitto as local processes, the relay, or HOST:PORT.

Every broker we start is a separate process listening on 127.0.0.1 on a free port, so it shares
no GIL with the load generator. Both brokers get the same configuration:

    listener PORT 127.0.0.1
    allow_anonymous true
    max_queued_messages 1000          (--max-queued-messages; 1000 is both brokers' default)
    message_size_limit 104857600      (100 MiB: the large-payload check sends 10 MB, 100 MB and one byte too many)
    listener PORT2 127.0.0.1          (the max_connections check)
    max_connections 100

With the default queue limit a broker that accepts messages faster than its subscribers take them
drops some (mosquitto also drops QoS 0 messages once 1000 wait to be written): the figures say how
many, as a user would see it.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BROKER_CONFIG = """listener {port} 127.0.0.1
allow_anonymous true
max_queued_messages {max_queued_messages}
message_size_limit {message_size_limit}
listener {limited_port} 127.0.0.1
allow_anonymous true
max_connections {max_connections}
"""
MESSAGE_SIZE_LIMIT = 100 * 1024 * 1024
MAX_CONNECTIONS = 100  # on the second listener (limited_port)
STARTUP_TIMEOUT = 15.0


class TargetError(Exception):
    """A target could not be started, or is not allowed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _project_root() -> str:
    """The folder holding the refbroker and bench packages, so child processes import this checkout."""
    return str(Path(__file__).resolve().parent.parent)


class Target:
    """A broker address; `start` and `stop` manage its process, if we run one."""

    name = "target"
    host = "127.0.0.1"
    port = 0
    limited_port = 0  # a listener with max_connections MAX_CONNECTIONS (0: none)
    description = ""
    pid: int | None = None  # the broker's process, when we run it (memory figures read its RSS)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def check_alive(self) -> None:
        pass


class AddressTarget(Target):
    """A broker somebody else runs. Only loopback addresses: this benchmark floods its target."""

    def __init__(self, spec: str):
        host, separator, port = spec.rpartition(":")
        host = host.strip("[]")
        if not separator or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise TargetError(f"target {spec!r}: expected refbroker, mosquitto, relay or HOST:PORT")
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)}
        except socket.gaierror as error:
            raise TargetError(f"target {spec!r}: cannot resolve {host!r} ({error.strerror})") from None
        if not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
            raise TargetError(f"target {spec!r}: only loopback addresses (127.0.0.0/8, ::1) may be benchmarked")
        self.name = spec
        self.host = host
        self.port = int(port)
        self.description = f"broker at {spec}"

    def start(self) -> None:
        try:
            socket.create_connection((self.host, self.port), timeout=3).close()
        except OSError as error:
            raise TargetError(f"nothing accepts connections at {self.name}: {error.strerror or error}") from None


class ProcessTarget(Target):
    """A broker (or the relay) we start as a child process on a free loopback port."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.workdir: str | None = None
        self.log_path: str | None = None
        self.cpus: set[int] | None = None  # CPUs the process may run on (None: any)
        self.max_queued_messages = 1000

    def command(self, config_path: str) -> list[str]:
        raise NotImplementedError

    def _prepare_workdir(self) -> str:
        return tempfile.mkdtemp(prefix=f"bench-{self.name}-")

    def start(self) -> None:
        self.port = free_port()
        self.limited_port = free_port()
        self.workdir = self._prepare_workdir()
        config_path = os.path.join(self.workdir, "broker.conf")
        with open(config_path, "w") as config:
            config.write(BROKER_CONFIG.format(port=self.port, limited_port=self.limited_port,
                                              max_queued_messages=self.max_queued_messages,
                                              message_size_limit=MESSAGE_SIZE_LIMIT, max_connections=MAX_CONNECTIONS))
        os.chmod(config_path, 0o644)
        self.log_path = os.path.join(self.workdir, "broker.log")
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [_project_root(), environment.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(config_path), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.workdir, env=environment)
        self.pid = self.process.pid
        if self.cpus:
            os.sched_setaffinity(self.process.pid, self.cpus)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                message = f"{self.name} exited with status {self.process.returncode} while starting:\n{self.log_tail()}"
                self.stop()
                raise TargetError(message)
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    message = f"{self.name} did not listen on port {self.port} within {STARTUP_TIMEOUT:.0f} s:\n" \
                              f"{self.log_tail()}"
                    self.stop()
                    raise TargetError(message) from None
                time.sleep(0.05)
        self.description = self.description.split(" (pid ")[0] + f" (pid {self.process.pid}, port {self.port}"
        self.description += f", CPU {','.join(map(str, sorted(self.cpus)))})" if self.cpus else ")"

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise TargetError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:]).rstrip() or "(no output)"
        except (OSError, TypeError):
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM, as a user would stop it (refbroker then also writes its profile, if asked for); then
        its folder (config, log) goes."""
        process, self.process = self.process, None
        self.pid = None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        finally:
            workdir, self.workdir = self.workdir, None
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)


class RefbrokerTarget(ProcessTarget):
    name = "refbroker"

    def __init__(self, profile_path: str | None = None):
        super().__init__()
        self.profile_path = os.path.abspath(profile_path) if profile_path else None
        from refbroker import __version__
        from refbroker.server import loop_kind
        self.description = (f"refbroker {__version__} on {loop_kind()}'s event loop: {Path(sys.executable).name} "
                            f"-m refbroker -c CONF")
        if self.profile_path:
            self.description += f", under cProfile (-> {self.profile_path})"

    def command(self, config_path: str) -> list[str]:
        if self.profile_path:
            return [sys.executable, "-m", "cProfile", "-o", self.profile_path, "-m", "refbroker", "-c", config_path]
        return [sys.executable, "-m", "refbroker", "-c", config_path]


class MosquittoTarget(ProcessTarget):
    name = "mosquitto"

    def __init__(self, binary: str | None = None):
        super().__init__()
        found = binary or shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto")
                                                        else None)
        if not found or not os.access(found, os.X_OK):
            raise TargetError("mosquitto not found (Debian: apt-get install mosquitto; or give --mosquitto PATH, "
                              "or benchmark only refbroker with --target refbroker)")
        self.binary = found
        self.description = f"{_mosquitto_version(found)}: {found} -c CONF"

    def _prepare_workdir(self) -> str:
        # Started as root, mosquitto drops to the user "mosquitto", which must still read its files
        workdir = super()._prepare_workdir()
        os.chmod(workdir, 0o777)
        return workdir

    def command(self, config_path: str) -> list[str]:
        return [self.binary, "-c", config_path]


def _mosquitto_version(binary: str) -> str:
    try:
        output = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "mosquitto"
    first = output.splitlines()[0] if output else ""
    return first.replace(" version ", " ") if first.startswith("mosquitto") else "mosquitto"


class RelayTarget(ProcessTarget):
    name = "relay"
    description = "trivial relay (python -m bench.relay): the load generator's ceiling"

    def command(self, config_path: str) -> list[str]:
        return [sys.executable, "-m", "bench.relay", "--port", str(self.port)]


class LoopFloorTarget(ProcessTarget):
    name = "loop-floor"
    description = "refbroker's event loop with no MQTT state (python -m bench.loop_floor): the memory floor"

    def command(self, config_path: str) -> list[str]:
        return [sys.executable, "-m", "bench.loop_floor", "--port", str(self.port)]


def make_target(spec: str, *, mosquitto: str | None = None, refbroker_profile: str | None = None) -> Target:
    if spec == "refbroker":
        return RefbrokerTarget(refbroker_profile)
    if spec == "mosquitto":
        return MosquittoTarget(mosquitto)
    if spec == "relay":
        return RelayTarget()
    return AddressTarget(spec)

"""Find a Docker engine, or start one, and stop only what we started.

`ensure_engine()` first asks the engine named by the environment (DOCKER_HOST, else the default
socket) whether it answers. If none does and we are root with `dockerd` installed, it starts
`dockerd --storage-driver=vfs` with its own pidfile and log in a temporary directory, waits (bounded)
until the engine answers, and returns a handle whose `stop()` ends that dockerd, by its pid, and
nothing else. vfs is slow and large but works everywhere, including inside containers and on
filesystems where overlayfs does not; the images we build are small enough for it.

The engine's data root stays the default (/var/lib/docker), so images built once are there for the
next run. Everything else (pidfile, log, exec root) lives in the temporary directory.

We talk to the engine only through the docker SDK (`pip install 'mqtt-conformance-toolkit[interop]'`);
a subprocess is used only to start dockerd itself.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import docker

INSTALL_HINT = "apt-get install docker.io"
SDK_HINT = "pip install 'mqtt-conformance-toolkit[interop]' (or: pip install 'docker>=7')"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
START_LOCK = Path(tempfile.gettempdir()) / "mqtt-toolkit-dockerd.lock"


class DockerUnavailable(RuntimeError):
    """No Docker engine could be reached or started. The message says what to do; `reason` is one of
    "sdk-missing", "not-installed", "not-root", "start-failed"."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class EngineHandle:
    """A Docker engine we can talk to. `started` tells whether this process started it."""

    client: "docker.DockerClient"
    started: bool = False
    pid: int | None = None
    workdir: Path | None = None
    log_path: Path | None = None
    _process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def stopped(self) -> bool:
        """Did `stop()` end the engine this process started (so a new one must be started to use Docker)?"""
        return self.started and self._process is None

    @property
    def server_version(self) -> str:
        return str(self.client.version().get("Version", "?"))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the engine if (and only if) we started it: SIGTERM to its pid, SIGKILL after `timeout`.
        Harmless to call twice; for an engine we found running it only closes the client."""
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a connection pool must not hide the real work below
            pass
        if not self.started or self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _import_sdk():
    try:
        import docker
    except ImportError:
        raise DockerUnavailable(f"the docker Python package is missing: {SDK_HINT}", "sdk-missing") from None
    return docker


def _try_client(docker_module, base_url: str | None) -> "docker.DockerClient | None":
    """A client for the engine at `base_url` (None: from the environment) if it answers a ping."""
    try:
        if base_url is None:
            client = docker_module.from_env(timeout=30)
        else:
            client = docker_module.DockerClient(base_url=base_url, timeout=30)
    except Exception:  # noqa: BLE001 - the SDK raises DockerException, or requests' errors, when nothing listens
        return None
    try:
        client.ping()
    except Exception:  # noqa: BLE001
        client.close()
        return None
    return client


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (empty log)"


def ensure_engine(start_timeout: float = 60.0) -> EngineHandle:
    """Return a handle on a working Docker engine, starting dockerd if needed (see the module doc).

    Raises DockerUnavailable with an actionable message; never lets a traceback from the SDK out.
    """
    docker_module = _import_sdk()
    client = _try_client(docker_module, None)
    if client is not None:
        return EngineHandle(client)
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailable(f"Docker is not installed (no dockerd on PATH): {INSTALL_HINT}", "not-installed")
    if os.geteuid() != 0:
        raise DockerUnavailable("no Docker engine answers, and only root can start dockerd: start it "
                                "(e.g. `sudo dockerd --storage-driver=vfs &`) or run as root", "not-root")
    # Several processes (pytest-xdist workers, two CLIs) may get here at once: one starts dockerd,
    # the others wait on the lock and then find it answering.
    with open(START_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = _try_client(docker_module, DEFAULT_SOCKET) or _try_client(docker_module, None)
        if client is not None:
            return EngineHandle(client)
        return _start_dockerd(docker_module, dockerd, start_timeout)


def _start_dockerd(docker_module, dockerd: str, start_timeout: float) -> EngineHandle:
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-toolkit-dockerd-"))
    log_path = workdir / "dockerd.log"
    pidfile = workdir / "dockerd.pid"
    command = [dockerd, "--storage-driver=vfs", f"--pidfile={pidfile}", f"--exec-root={workdir / 'exec'}",
               f"--host={DEFAULT_SOCKET}"]
    with open(log_path, "wb") as log:
        # A session of its own, so a Ctrl-C meant for us does not kill the engine under running containers;
        # stop() (or the atexit hook below) ends it.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    handle = EngineHandle(client=None, started=True, pid=process.pid, workdir=workdir,  # type: ignore[arg-type]
                          log_path=log_path, _process=process)
    deadline = time.monotonic() + start_timeout
    while True:
        if process.poll() is not None:
            tail = _log_tail(log_path)
            shutil.rmtree(workdir, ignore_errors=True)
            raise DockerUnavailable(f"dockerd exited with status {process.returncode} while starting; "
                                    f"the end of its log:\n{tail}", "start-failed")
        client = _try_client(docker_module, DEFAULT_SOCKET)
        if client is not None:
            handle.client = client
            atexit.register(handle.stop)
            return handle
        if time.monotonic() > deadline:
            tail = _log_tail(log_path)
            process.kill()
            process.wait(10)
            shutil.rmtree(workdir, ignore_errors=True)
            raise DockerUnavailable(f"dockerd did not answer within {start_timeout:.0f} s; "
                                    f"the end of its log ({log_path}):\n{tail}", "start-failed")
        time.sleep(0.25)


_shared: EngineHandle | None = None


def shared_engine() -> EngineHandle:
    """One engine per process for code that has no handle of its own (e.g. a target built from a
    command-line option). If we start dockerd here, it is stopped when the process exits."""
    global _shared
    if _shared is None or _shared.stopped:
        _shared = ensure_engine()
    return _shared

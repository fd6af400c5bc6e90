"""Find a Docker engine, or start one, and stop only what we started.

`ensure_engine()` first asks the engine named by the environment (DOCKER_HOST, else the default
socket) whether it answers. If none does and we are root with `dockerd` installed, it starts
`dockerd --storage-driver=vfs` with its own pidfile and log in a temporary directory, waits (bounded)
until the engine answers, and returns a handle whose `stop()` ends that dockerd, by its pid, and
nothing else. vfs is slow and large but works everywhere, including inside containers and on
filesystems where overlayfs does not; the images we build are small enough for it.

Several processes may use a dockerd one of them started (`tox -m interop -p 2`: one process per
broker target, each with Docker brokers or the image's command-line clients). So the dockerd we start
is shared, not owned: its pid is recorded in a file (STARTED_FILE), every handle on it holds a shared
lock on USERS_LOCK for as long as it is in use, and `stop()` ends dockerd only when no other handle,
in this process or another, still holds that lock: the last user stops it, whoever started it.
Finding, starting, joining and stopping all happen under one exclusive lock (START_LOCK), so a
process cannot join an engine that another is stopping. A dockerd that answered before we looked
(started by the system or by hand) is never stopped.

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
START_LOCK = Path(tempfile.gettempdir()) / "mqtt-toolkit-dockerd.lock"      # find / start / join / stop
USERS_LOCK = Path(tempfile.gettempdir()) / "mqtt-toolkit-dockerd.users"     # held shared by every user
STARTED_FILE = Path(tempfile.gettempdir()) / "mqtt-toolkit-dockerd.started"  # "pid workdir" of ours


class DockerUnavailable(RuntimeError):
    """No Docker engine could be reached or started. The message says what to do; `reason` is one of
    "sdk-missing", "not-installed", "not-root", "start-failed"."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class EngineHandle:
    """A Docker engine we can talk to. `started` tells whether this process started it; `shared`
    whether it is a dockerd the toolkit started (this process or another), which the last handle
    on it stops."""

    client: "docker.DockerClient"
    started: bool = False
    pid: int | None = None
    workdir: Path | None = None
    log_path: Path | None = None
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _membership: int | None = field(default=None, repr=False)  # fd holding USERS_LOCK shared
    released: bool = False  # stop() was called: this handle is not to be used any more

    @property
    def shared(self) -> bool:
        return self._membership is not None

    @property
    def stopped(self) -> bool:
        """Has `stop()` been called (so another handle must be asked for to use Docker)?"""
        return self.released

    @property
    def server_version(self) -> str:
        return str(self.client.version().get("Version", "?"))

    def hold(self) -> EngineHandle:
        """Count this handle as a user of the engine if it is a dockerd the toolkit started: a shared
        lock on USERS_LOCK until `stop()`, which the process's exit also calls. ensure_engine calls it
        under START_LOCK, so that no other process is stopping that dockerd meanwhile."""
        if self._membership is None and _started_record() is not None:
            self._membership = os.open(USERS_LOCK, os.O_RDONLY | os.O_CREAT, 0o644)
            fcntl.flock(self._membership, fcntl.LOCK_SH)
            atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Let go of the engine; if it is a dockerd the toolkit started and no other handle (in any
        process) uses it any more, end it: SIGTERM to its pid, SIGKILL after `timeout`. Harmless to
        call twice; an engine we found running is never stopped."""
        self.released = True
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a connection pool must not hide the real work below
            pass
        if self._membership is None:
            return
        with _exclusive(START_LOCK):
            os.close(self._membership)
            self._membership = None
            record = _started_record()
            if record is None:
                return
            with open(USERS_LOCK, "a") as users:
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another handle still uses it: the last one stops it
                pid, workdir = record
                own = self._process if self._process is not None and self._process.pid == pid else None
                _terminate(pid, own, timeout)
                self._process = None
                shutil.rmtree(workdir, ignore_errors=True)
                STARTED_FILE.unlink(missing_ok=True)


class _exclusive:
    """`with _exclusive(path):` an exclusive flock on `path` (created if missing) for the block."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info) -> None:
        self.file.close()  # closing releases the lock


def _process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _started_record() -> tuple[int, Path] | None:
    """(pid, workdir) of the dockerd the toolkit started, if it still runs; a stale record is removed."""
    try:
        pid_text, workdir = STARTED_FILE.read_text().split(maxsplit=1)
        pid = int(pid_text)
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            alive = b"dockerd" in cmdline.read() and not _process_gone(pid)
    except (OSError, ValueError):
        alive = False
    if not alive:
        STARTED_FILE.unlink(missing_ok=True)
        return None
    return pid, Path(workdir.strip())


def _terminate(pid: int, process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout`; waits for the end (reaps it if it is our child)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and _process_gone(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(10)


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
    if os.geteuid() != 0:
        client = _try_client(docker_module, None)
        if client is not None:
            return EngineHandle(client)
        if shutil.which("dockerd") is None:
            raise DockerUnavailable(f"Docker is not installed (no dockerd on PATH): {INSTALL_HINT}", "not-installed")
        raise DockerUnavailable("no Docker engine answers, and only root can start dockerd: start it "
                                "(e.g. `sudo dockerd --storage-driver=vfs &`) or run as root", "not-root")
    # Several processes (tox environments in parallel, two CLIs) may get here at once: one starts
    # dockerd, the others wait on the lock, then find it answering and join it.
    with _exclusive(START_LOCK):
        client = _try_client(docker_module, None) or _try_client(docker_module, DEFAULT_SOCKET)
        if client is not None:
            return EngineHandle(client).hold()
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise DockerUnavailable(f"Docker is not installed (no dockerd on PATH): {INSTALL_HINT}", "not-installed")
        return _start_dockerd(docker_module, dockerd, start_timeout).hold()


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
            STARTED_FILE.write_text(f"{process.pid} {workdir}\n")  # hold() makes the handle its first user
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

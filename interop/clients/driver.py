"""The runner's side of the client line protocol: one client library in a child process, driven by JSON
lines on its stdin and answering with JSON lines on its stdout.

Every request is one line `{"id": N, "op": OP, ...}`; the driver answers `{"id": N, "ok": true, ...}` or
`{"id": N, "ok": false, "error": TEXT}`. A driver holds any number of connections, each named by the
runner (`"conn"`). The operations (every driver implements them with its library's public API):

    hello                              -> {library, version, features: [...]}   what the library offers
    connect     conn host port version transport(tcp|tls|ws) [ca cert key] client_id clean
                [session_expiry keepalive username password will{topic payload qos retain delay properties}
                 receive_maximum maximum_packet_size]
                                       -> {session_present, reason_code, properties{...}}
    subscribe   conn topic qos [subscription_identifier]   -> {granted: [code]}
    unsubscribe conn topic
    publish     conn topic payload qos retain [properties{user_properties: [[k, v]], message_expiry,
                topic_alias, response_topic, correlation_data, payload_format, content_type}]
                                       -> {} once the library says the flow is complete
    receive     conn count timeout     -> {messages: [{topic, payload, qos, retain, properties{...}}]}
                                          (fewer than `count` when the timeout passed)
    status      conn                   -> {connected: bool}
    disconnect  conn                   (a normal DISCONNECT)
    reset                              close every connection (between cells)

An abnormal disconnect is the driver process being killed (`kill`): the kernel closes its sockets
without an MQTT DISCONNECT, as when a client crashes. A request that gets no answer within its time
limit raises `ClientHung`; the runner kills the driver.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path


class ClientError(RuntimeError):
    """The driver answered with an error (the library refused or failed the operation)."""

    def __init__(self, op: str, message: str):
        super().__init__(f"{op}: {message}")
        self.op = op
        self.message = message


class ClientHung(RuntimeError):
    """No answer within the time limit (or the driver died)."""


class DriverProcess:
    def __init__(self, command: list[str], *, name: str, env: dict[str, str] | None = None,
                 cwd: str | None = None, log_path: str | None = None):
        self.command = command
        self.name = name
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()
        self._next_id = 0
        self.info: dict = {}

    def start(self, timeout: float = 30.0) -> dict:
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=stderr, cwd=self.cwd, env=self.env, start_new_session=True)
        except OSError as exc:
            raise ClientHung(f"cannot start the {self.name} driver: {exc}") from None
        finally:
            if self.log_path:
                stderr.close()
        threading.Thread(target=self._read, args=(self.process,), daemon=True,
                         name=f"driver-{self.name}").start()
        self.info = self.call("hello", limit=timeout)
        return self.info

    def _read(self, process: subprocess.Popen) -> None:
        for raw in process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue  # a library printing to stdout: not an answer
            if isinstance(message, dict) and "id" in message:
                self._answers.put(message)
        self._answers.put(None)  # end of output: the driver exited

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def call(self, op: str, *, limit: float = 10.0, **arguments) -> dict:
        """Send one request and wait at most `limit` seconds for its answer."""
        if not self.alive:
            raise ClientHung(f"the {self.name} driver is not running")
        self._next_id += 1
        request_id = self._next_id
        line = json.dumps({"id": request_id, "op": op, **arguments}) + "\n"
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ClientHung(f"the {self.name} driver exited (code {self.process.poll()}) before {op}") from None
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientHung(f"{self.name}: no answer to {op} within {limit:g} s")
            try:
                answer = self._answers.get(timeout=left)
            except queue.Empty:
                continue
            if answer is None:
                self._answers.put(None)
                raise ClientHung(f"the {self.name} driver exited (code {self.process.wait()}) during {op}"
                                 f"{self._stderr_tail()}")
            if answer.get("id") != request_id:
                continue  # a late answer to a request that timed out
            if not answer.get("ok"):
                raise ClientError(op, str(answer.get("error") or "failed"))
            return answer

    def _stderr_tail(self) -> str:
        if self.log_path and Path(self.log_path).exists():
            lines = Path(self.log_path).read_text(errors="replace").splitlines()[-5:]
            return ("\n" + "\n".join(lines)) if lines else ""
        return ""

    def kill(self) -> None:
        """SIGKILL the driver's process group: its connections close without a DISCONNECT."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        if self.alive:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

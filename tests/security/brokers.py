"""Run refbroker or mosquitto from one mosquitto.conf text, as a user would: a process on loopback ports.

    with BrokerProcess("mosquitto", config_text, workdir) as broker:
        ... connect to the ports the config names ...
        broker.logs()          # everything the broker logged (mosquitto: log_type all; refbroker: -v)

Both brokers read the same config (refbroker reads mosquitto.conf), so a test states the setup once
and checks the same behaviour on both. `KINDS` is what the tests are parametrised with; mosquitto is
skipped with the command that installs it when it is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.targets import find_mosquitto, free_port, terminate, wait_for_port

from ..broker.processes import require

KINDS = ("refbroker", "mosquitto")


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class BrokerProcess:
    def __init__(self, kind: str, config: str, workdir: Path, *, wait_ports: list[int]):
        self.kind = kind
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o777)  # mosquitto started as root writes its log as user mosquitto
        self.log_file = self.workdir / f"{kind}.log"
        self.config_file = self.workdir / f"{kind}.conf"
        if kind == "mosquitto":
            config += f"\nlog_dest file {self.log_file}\nlog_type all\nconnection_messages true\n"
        self.config_file.write_text(config, encoding="utf-8")
        os.chmod(self.config_file, 0o644)
        self.wait_ports = wait_ports  # started once every one of them accepts connections
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.kind == "mosquitto":
            return [find_mosquitto(), "-c", str(self.config_file)]
        return [sys.executable, "-m", "refbroker", "-c", str(self.config_file), "-v"]

    def start(self) -> BrokerProcess:
        require(self.kind)
        output = open(self.workdir / f"{self.kind}.stdout", "ab")  # noqa: SIM115 - kept by the process
        self.process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        output.close()
        try:
            for port in self.wait_ports:
                wait_for_port("127.0.0.1", port, 15, alive=lambda: self.process.poll() is None)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.kind} did not start:\n{self.logs()[-3000:]}") from None
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            terminate(process, timeout=10)

    def logs(self) -> str:
        texts = []
        for path in (self.log_file, self.workdir / f"{self.kind}.stdout"):
            if path.exists():
                texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(texts)

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

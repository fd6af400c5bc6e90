"""Log output in mosquitto's format: "<unix time>: <message>", filtered by log type."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class LogSink:
    def __init__(self, log_types: frozenset[str] | set[str], stream: TextIO | None = None, keep: bool = False):
        self.log_types = frozenset(log_types)
        self.stream = stream
        self.keep = keep
        self._lines: list[str] = []
        self._lock = threading.Lock()

    @property
    def wants_debug(self) -> bool:
        return "debug" in self.log_types

    def __call__(self, kind: str, message: str) -> None:
        if kind not in self.log_types:
            return
        line = f"{int(time.time())}: {message}"
        if self.keep:
            with self._lock:
                self._lines.append(line)
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines) + ("\n" if self._lines else "")


def stderr_sink(log_types) -> LogSink:
    return LogSink(log_types, sys.stderr)

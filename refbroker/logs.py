"""The broker's log, as mosquitto writes it: "<time>: <message>", filtered by log type, to the
destinations of `log_dest`.

    log_type      error warning notice information subscribe unsubscribe websockets debug (all, none)
    log_dest      stderr (the default) | stdout | file PATH | topic | syslog | none; may be repeated
    log_timestamp          false: no time in front of the message
    log_timestamp_format   strftime format of that time; unset: seconds since the epoch
    log_facility           syslog facility local0..local7 (a number); unset: daemon
    connection_messages    false: no lines about clients connecting and disconnecting

`topic` publishes each line (debug lines never) on $SYS/broker/log/E, W, N, I, M/subscribe,
M/unsubscribe or WS. The sink cannot publish itself (it is called from inside the core), so it keeps
those lines until the host takes them (`take_topic_lines`) and publishes them through the broker.
`reopen` closes and reopens the log file (SIGHUP, e.g. after logrotate moved it).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from .core.settings import CONNECTION_MESSAGE, DEFAULT_LOG_TYPES, Settings

# The topics of `log_dest topic`, by log type (mosquitto's); debug is never published
LOG_TOPICS = {
    "error": "$SYS/broker/log/E",
    "warning": "$SYS/broker/log/W",
    "notice": "$SYS/broker/log/N",
    "information": "$SYS/broker/log/I",
    "subscribe": "$SYS/broker/log/M/subscribe",
    "unsubscribe": "$SYS/broker/log/M/unsubscribe",
    "websockets": "$SYS/broker/log/WS",
}

LOG_DESTINATIONS = ("stderr", "stdout", "file", "topic", "syslog", "none")


class LogFileError(Exception):
    """The file of `log_dest file` cannot be opened for writing."""


class LogSink:
    """Called as log(kind, message) by the core and the host; `kind` is a log type, or
    CONNECTION_MESSAGE (a notice that `connection_messages false` leaves out).

    `stream`: where lines go when no `log_dest` is configured (the command line passes stderr; the
    embedded broker None). `keep`: also keep every line for `text()`.
    """

    def __init__(self, log_types: frozenset[str] | set[str] = DEFAULT_LOG_TYPES, stream: TextIO | None = None,
                 keep: bool = False):
        self.log_types = frozenset(log_types)
        self.default_stream = stream
        self.keep = keep
        self.connection_messages = True
        self.timestamp = True
        self.timestamp_format: str | None = None
        self._streams: list[TextIO] = [stream] if stream is not None else []
        self._file_path: str | None = None
        self._file: TextIO | None = None
        self._syslog_facility: int | None = None  # set: lines go to syslog too
        self._to_topic = False
        self._topic_lines: list[tuple[str, str]] = []
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def configure(self, settings: Settings, log_types: frozenset[str] | None = None) -> None:
        """Take the log keys of `settings` (at start and on SIGHUP); `log_types` overrides its log_type
        (-v and -q). Raises LogFileError if a `log_dest file` cannot be opened."""
        self.log_types = frozenset(settings.log_types if log_types is None else log_types)
        self.connection_messages = settings.connection_messages
        self.timestamp = settings.log_timestamp
        self.timestamp_format = settings.log_timestamp_format
        streams: list[TextIO] = []
        file_path = None
        facility = None
        self._to_topic = False
        destinations = settings.log_dest or ([("stderr", None)] if self.default_stream is not None else [])
        for destination, argument in destinations:
            if destination == "stderr":
                streams.append(sys.stderr)
            elif destination == "stdout":
                streams.append(sys.stdout)
            elif destination == "file":
                file_path = argument
            elif destination == "topic":
                self._to_topic = True
            elif destination == "syslog":
                facility = _syslog_facility(settings.log_facility)
        with self._lock:
            self._streams = streams
            if file_path != self._file_path:
                self._close_file()
                self._file_path = file_path
            self._open_file()
            if facility is not None:
                import syslog
                syslog.openlog("refbroker", syslog.LOG_PID, facility)
            self._syslog_facility = facility

    @property
    def publishes(self) -> bool:
        """True with `log_dest topic`: the host must take and publish lines."""
        return self._to_topic

    @property
    def wants_debug(self) -> bool:
        return "debug" in self.log_types

    def __call__(self, kind: str, message: str) -> None:
        if kind == CONNECTION_MESSAGE:
            if not self.connection_messages:
                return
            kind = "notice"
        if kind not in self.log_types:
            return
        line = self._stamp() + message
        with self._lock:
            if self.keep:
                self._lines.append(line)
            for stream in self._streams:
                print(line, file=stream, flush=True)
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
            if self._syslog_facility is not None:
                import syslog
                syslog.syslog(_SYSLOG_PRIORITY.get(kind, 5), message)
            if self._to_topic and kind in LOG_TOPICS:
                self._topic_lines.append((LOG_TOPICS[kind], line))

    def _stamp(self) -> str:
        if not self.timestamp:
            return ""
        if self.timestamp_format is None:
            return f"{int(time.time())}: "
        return time.strftime(self.timestamp_format) + ": "

    def take_topic_lines(self) -> list[tuple[str, str]]:
        """(topic, line) of the lines for `log_dest topic` since the last call."""
        with self._lock:
            lines, self._topic_lines = self._topic_lines, []
        return lines

    def reopen(self) -> None:
        """Close and reopen the log file (on SIGHUP)."""
        with self._lock:
            self._close_file()
            self._open_file()

    def close(self) -> None:
        with self._lock:
            self._close_file()

    def _open_file(self) -> None:
        if self._file_path is None or self._file is not None:
            return
        try:
            self._file = open(self._file_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as error:
            raise LogFileError(f"Unable to open log file {self._file_path} for writing "
                               f"({error.strerror or error}).") from None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines) + ("\n" if self._lines else "")


# syslog priorities (syslog.h numbers, so that the module is imported only when syslog is used)
_SYSLOG_PRIORITY = {"error": 3, "warning": 4, "notice": 5, "information": 6, "debug": 7,
                    "subscribe": 5, "unsubscribe": 5, "websockets": 7}


def _syslog_facility(local: int | None) -> int:
    """LOG_DAEMON, or LOG_LOCALn for `log_facility n`."""
    import syslog
    if local is None:
        return syslog.LOG_DAEMON
    return (syslog.LOG_LOCAL0, syslog.LOG_LOCAL1, syslog.LOG_LOCAL2, syslog.LOG_LOCAL3, syslog.LOG_LOCAL4,
            syslog.LOG_LOCAL5, syslog.LOG_LOCAL6, syslog.LOG_LOCAL7)[local]

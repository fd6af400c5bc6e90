"""A mosquitto.conf reader for the keys refbroker understands.

The format is mosquitto's: one `key value` per line, `#` starts a comment line, `include_dir`
reads every `*.conf` of a directory in alphabetical order. Every line is checked: an unknown key or
a bad value is a `ConfigError` naming the file and the line, never a traceback. Keys that make
sense for mosquitto but change nothing here (log_dest, persistence ...) are accepted and listed in
`Settings.ignored`, which `refbroker -v` prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .auth import AccessControlList, AuthFileError, PasswordFile, ScramUsers
from .core.settings import DEFAULT_PORT, LOG_TYPES, Listener, Settings


class ConfigError(Exception):
    """A config line refbroker cannot use; str() is 'file:line: what is wrong'."""


# Accepted, but refbroker does nothing with them (yet): persistence, logging destinations ...
IGNORED_KEYS = frozenset({
    "autosave_interval", "autosave_on_changes", "check_retain_source", "connection_messages", "log_dest",
    "log_facility", "log_timestamp", "log_timestamp_format", "max_connections", "max_inflight_bytes",
    "max_queued_bytes", "memory_limit", "persistence", "persistence_file", "persistence_location",
    "persistent_client_expiration_check", "pid_file", "retain_expiry_interval", "set_tcp_nodelay",
    "socket_domain", "upgrade_outgoing_qos", "user", "websockets_log_level", "websockets_headers_size",
})

# Understood by mosquitto, refused here so nobody believes they are in force.
UNSUPPORTED_KEYS = {
    "psk_file": "TLS-PSK is not supported", "psk_hint": "TLS-PSK is not supported",
    "plugin": "plugins are not supported",
    "auth_plugin": "plugins are not supported",
    "crlfile": "certificate revocation lists are not supported",
    "use_subject_as_username": "use_subject_as_username is not supported (use_identity_as_username is)",
    "connection": "bridges are not supported",
}

# Keys that belong to the most recent `listener` (or, before any, to the default listener).
_TLS_KEYS = {"certfile", "keyfile", "cafile", "capath", "tls_version", "ciphers"}
_TLS_SWITCHES = {"require_certificate", "use_identity_as_username"}
_TLS_VERSIONS = ("tlsv1.3", "tlsv1.2", "tlsv1.1")

# Files of refbroker/auth, loaded when the line is read so a bad file is reported with its line.
_AUTH_FILES = {"password_file": ("passwords", PasswordFile), "acl_file": ("acl", AccessControlList),
               "scram_users": ("scram_users", ScramUsers)}

_DURATION_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}


@dataclass
class _Line:
    path: str
    number: int

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{self.number}: {message}")


def _boolean(value: str, line: _Line) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise line.error(f"expected 'true' or 'false', got {value!r}")


def _integer(low: int, high: int) -> Callable[[str, _Line], int]:
    def parse(value: str, line: _Line) -> int:
        try:
            number = int(value)
        except ValueError:
            raise line.error(f"expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise line.error(f"{number} is out of range ({low}..{high})")
        return number
    return parse


def _duration(value: str, line: _Line) -> float:
    """persistent_client_expiration: '2d', '1w', '3h' ..."""
    number, unit = value[:-1], value[-1:]
    if unit not in _DURATION_UNITS or not number.isdigit():
        raise line.error(f"expected a duration such as 1h, 2d, 1w, 1m or 1y, got {value!r}")
    return int(number) * _DURATION_UNITS[unit]


_SIMPLE_KEYS: dict[str, tuple[str, Callable]] = {
    # key: (Settings field, parser)
    "allow_anonymous": ("allow_anonymous", _boolean),
    "max_inflight_messages": ("max_inflight_messages", _integer(0, 65535)),
    "max_queued_messages": ("max_queued_messages", _integer(0, 2**31 - 1)),
    "queue_qos0_messages": ("queue_qos0_messages", _boolean),
    "max_packet_size": ("max_packet_size", _integer(0, 268_435_460)),
    "message_size_limit": ("message_size_limit", _integer(0, 268_435_455)),
    "max_keepalive": ("max_keepalive", _integer(0, 65535)),
    "retain_available": ("retain_available", _boolean),
    "sys_interval": ("sys_interval", _integer(0, 2**31 - 1)),
    "persistent_client_expiration": ("persistent_client_expiration", _duration),
    "allow_zero_length_clientid": ("allow_zero_length_clientid", _boolean),
    "auto_id_prefix": ("auto_id_prefix", lambda value, line: value),
    "max_qos": ("max_qos", _integer(0, 2)),
    "max_topic_alias": ("max_topic_alias", _integer(0, 65535)),
    "per_listener_settings": ("per_listener_settings", _boolean),
    "assign_topic_aliases": ("assign_topic_aliases", _boolean),
    "server_reference": ("server_reference", lambda value, line: value),
    "server_moved": ("server_moved", _boolean),
    "response_information": ("response_information", lambda value, line: value),
}


class _Parser:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.log_types: set[str] | None = None
        self.default_port: int | None = None
        self.default_bind: str | None = None
        self.default_listener = Listener(DEFAULT_PORT)  # holds TLS keys given before any `listener`
        self.checks: list[tuple[Listener, _Line]] = []  # listeners to check once all their keys are read

    def parse_file(self, path: str | os.PathLike) -> None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the config file ({error.strerror or error})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: the config file is not UTF-8 text") from None
        self.parse_text(text, str(path))

    def parse_text(self, text: str, path: str) -> None:
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue
            key, _, value = stripped.partition(" ")
            self.parse_line(key, value.strip(), _Line(path, number))

    def parse_line(self, key: str, value: str, line: _Line) -> None:
        settings = self.settings
        if key in _SIMPLE_KEYS:
            if not value and key != "auto_id_prefix":
                raise line.error(f"{key} needs a value")
            field, parse = _SIMPLE_KEYS[key]
            setattr(settings, field, parse(value, line))
            if key == "per_listener_settings" and settings.per_listener_settings:
                settings.ignored.append(f"{line.path}:{line.number}: per_listener_settings true "
                                        "(refbroker applies every setting to all listeners)")
        elif key == "listener":
            parts = value.split()
            if not 1 <= len(parts) <= 2:
                raise line.error("usage: listener PORT [BIND_ADDRESS]")
            port = _integer(0, 65535)(parts[0], line)
            settings.listeners.append(Listener(port, parts[1] if len(parts) == 2 else None))
            self.checks.append((settings.listeners[-1], line))
        elif key == "port":  # mosquitto's deprecated default listener
            self.default_port = _integer(0, 65535)(value, line)
        elif key == "bind_address":
            if not value:
                raise line.error("bind_address needs an address")
            self.default_bind = value
        elif key == "protocol":
            if value not in ("mqtt", "websockets"):
                raise line.error(f"protocol {value!r} is not supported (mqtt or websockets)")
            self._current_listener().protocol = value
        elif key in _TLS_KEYS:
            if not value:
                raise line.error(f"{key} needs a value")
            if key == "tls_version" and value not in _TLS_VERSIONS:
                raise line.error(f"tls_version must be one of {', '.join(_TLS_VERSIONS)}")
            if key in ("certfile", "keyfile", "cafile") and not Path(value).is_file():
                raise line.error(f"{key} {value!r}: no such file")
            setattr(self._current_listener().tls, key, value)
        elif key in _TLS_SWITCHES:
            setattr(self._current_listener().tls, key, _boolean(value, line))
        elif key in _AUTH_FILES:
            field, kind = _AUTH_FILES[key]
            try:
                setattr(settings, field, kind.load(value))
            except AuthFileError as error:
                raise line.error(f"{key}: {error}") from None
        elif key == "log_type":
            if value not in LOG_TYPES + ("all", "none"):
                raise line.error(f"unknown log_type {value!r}")
            if self.log_types is None:
                self.log_types = set()
            if value == "all":
                self.log_types.update(LOG_TYPES)
            elif value != "none":
                self.log_types.add(value)
        elif key == "include_dir":
            directory = Path(value)
            if not value or not directory.is_dir():
                raise line.error(f"include_dir {value!r} is not a directory")
            for path in sorted(directory.glob("*.conf")):
                self.parse_file(path)
        elif key in IGNORED_KEYS:
            settings.ignored.append(f"{line.path}:{line.number}: {key} (accepted, has no effect in refbroker)")
        elif key in UNSUPPORTED_KEYS:
            raise line.error(f"{key}: {UNSUPPORTED_KEYS[key]}")
        else:
            raise line.error(f"unknown configuration key {key!r}")

    def _current_listener(self) -> Listener:
        return self.settings.listeners[-1] if self.settings.listeners else self.default_listener

    def finish(self) -> Settings:
        settings = self.settings
        if self.log_types is not None:
            settings.log_types = frozenset(self.log_types)
        default = self.default_listener
        if self.default_port is not None or self.default_bind is not None or default != Listener(DEFAULT_PORT):
            default.port, default.host = self.default_port or DEFAULT_PORT, self.default_bind
            settings.listeners.insert(0, default)
            self.checks.insert(0, (default, _Line("<default listener>", 0)))
        for listener, line in self.checks:
            tls = listener.tls
            if tls.enabled != (tls.keyfile is not None):
                raise line.error("a TLS listener needs both certfile and keyfile")
            if (tls.cafile or tls.capath or tls.require_certificate or tls.tls_version) and not tls.enabled:
                raise line.error("TLS options without certfile and keyfile")
            if tls.require_certificate and not (tls.cafile or tls.capath):
                raise line.error("require_certificate needs cafile or capath")
            if tls.use_identity_as_username and not tls.require_certificate:
                raise line.error("use_identity_as_username needs require_certificate true")
        return settings


def load_config(path: str | os.PathLike) -> Settings:
    parser = _Parser(Settings())
    parser.parse_file(path)
    return parser.finish()


def parse_config(text: str, path: str = "<config>") -> Settings:
    parser = _Parser(Settings())
    parser.parse_text(text, path)
    return parser.finish()


def settings_from_mapping(values: Mapping[str, object], path: str = "<config>") -> Settings:
    """{'max_inflight_messages': 5, 'retain_available': False} -> Settings, checked like a file."""
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"{key} {value}")
    return parse_config("\n".join(lines), path)

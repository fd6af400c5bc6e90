"""A mosquitto.conf reader: every key of mosquitto 2.0.11 is either honoured or refused.

The format is mosquitto's: one `key value` per line, `#` starts a comment line, `include_dir`
reads every `*.conf` of a directory in mosquitto's order (case-insensitive alphabetical, upper case
before lower case of the same letter: 00.conf 01.conf A.conf a.conf B.conf b.conf). Every line is
checked: an unknown key or a bad value is a `ConfigError` naming the file and the line, never a
traceback. A key mosquitto knows but refbroker cannot honour (bridges, plugins, TLS-PSK ...) is
refused with the reason (`UNSUPPORTED_KEYS`): a broker that started with it ignored would pass
tests it should fail. Keys mosquitto itself accepts and ignores with a notice (retry_interval,
allow_duplicate_messages) get the same notice here, in `Settings.ignored`, which is logged at start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .auth import AccessControlList, AuthFileError, PasswordFile, ScramUsers
from .cli_hints import suggestion_text
from .core.compat import VERSIONS as COMPAT_VERSIONS
from .core.settings import DEFAULT_PORT, LOG_TYPES, Listener, Security, Settings


class ConfigError(Exception):
    """A config line refbroker cannot use; str() is 'file:line: what is wrong'."""


# mosquitto 2.0.11 accepts these and ignores them, saying so; refbroker says the same.
MOSQUITTO_NOTICES = {
    "allow_duplicate_messages": "The 'allow_duplicate_messages' option is now deprecated and will be removed in a "
                                "future version. The behaviour will default to true.",
    "retry_interval": "Warning: The retry_interval option is no longer available.",
}

_PLUGINS = "plugins are not supported (refbroker has password_file, acl_file and scram_users built in)"
_BRIDGES = "bridges are not supported"
_PSK = "TLS-PSK is not supported (Python's ssl module has no PSK support before Python 3.13)"
_ENGINES = "OpenSSL engines are not supported (Python's ssl module cannot load them)"
_LWS = "refbroker's WebSocket listener is not libwebsockets; this libwebsockets setting has no equivalent"

# Understood by mosquitto 2.0.11, refused here so nobody believes they are in force.
UNSUPPORTED_KEYS = {
    "psk_file": _PSK, "psk_hint": _PSK,
    "plugin": _PLUGINS, "auth_plugin": _PLUGINS, "auth_plugin_deny_special_chars": _PLUGINS,
    "ciphers_tls1.3": "Python's ssl module cannot choose the TLS 1.3 cipher suites (ciphers covers TLS 1.2)",
    "tls_engine": _ENGINES, "tls_engine_kpass_sha1": _ENGINES,
    "bind_interface": "bind_interface is not supported (use listener PORT ADDRESS)",
    "http_dir": "serving HTTP files on a WebSocket listener is not supported",
    "websockets_log_level": _LWS + " (log_type websockets logs refbroker's WebSocket handshakes)",
    "websockets_headers_size": _LWS,
    "log_dest dlt": "the dlt log destination is not supported",
    "set_tcp_nodelay false": "not supported: refbroker always sets TCP_NODELAY (Python's asyncio does), so "
                             "Nagle's algorithm cannot be left on; set_tcp_nodelay true is what it does",
    "tls_keyform engine": _ENGINES,
    # Bridges: `connection` starts one, the others configure it
    **{key: _BRIDGES for key in (
        "connection", "address", "addresses", "topic", "bridge_alpn", "bridge_attempt_unsubscribe",
        "bridge_bind_address", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity",
        "bridge_insecure", "bridge_keyfile", "bridge_max_packet_size", "bridge_outgoing_retain",
        "bridge_protocol_version", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version", "cleansession",
        "clientid", "idle_timeout", "keepalive_interval", "local_cleansession", "local_clientid", "local_password",
        "local_username", "notification_topic", "notifications", "notifications_local_only", "remote_clientid",
        "remote_password", "remote_username", "restart_timeout", "round_robin", "start_type", "threshold",
        "try_private")},
}
# Families of keys: auth_opt_NAME and plugin_opt_NAME
_UNSUPPORTED_PREFIXES = {"auth_opt_": _PLUGINS, "plugin_opt_": _PLUGINS}

# Keys that belong to the most recent `listener` (or, before any, to the default listener).
_TLS_KEYS = {"certfile", "keyfile", "cafile", "capath", "tls_version", "ciphers", "dhparamfile", "crlfile"}
_TLS_SWITCHES = {"require_certificate", "use_identity_as_username", "use_subject_as_username"}
_TLS_VERSIONS = ("tlsv1.3", "tlsv1.2", "tlsv1.1")

# Files of refbroker/auth, loaded when the line is read so a bad file is reported with its line.
_AUTH_FILES = {"password_file": ("passwords", PasswordFile), "acl_file": ("acl", AccessControlList),
               "scram_users": ("scram_users", ScramUsers)}

# The keys `per_listener_settings true` makes per listener (mosquitto.conf(5)): fields of `Security`.
# mosquitto refuses per_listener_settings after any of them; so do we.
_SECURITY_KEYS = ("password_file", "acl_file", "allow_anonymous", "allow_zero_length_clientid", "auto_id_prefix")

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


def _mosquitto_version(value: str, line: _Line) -> str:
    """mosquitto_compat: a version refbroker has a table of choices for (core/compat.py)."""
    if value not in COMPAT_VERSIONS:
        raise line.error(f"mosquitto_compat {value!r}: refbroker knows the choices of mosquitto "
                         f"{', '.join(COMPAT_VERSIONS)}")
    return value


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
    "max_queued_bytes": ("max_queued_bytes", _integer(0, 2**63 - 1)),
    "max_inflight_bytes": ("max_inflight_bytes", _integer(0, 2**63 - 1)),
    "memory_limit": ("memory_limit", _integer(0, 2**63 - 1)),
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
    "maximum_qos": ("max_qos", _integer(0, 2)),  # mosquitto 2.0 reads this old name too
    "max_topic_alias": ("max_topic_alias", _integer(0, 65535)),
    "per_listener_settings": ("per_listener_settings", _boolean),
    "assign_topic_aliases": ("assign_topic_aliases", _boolean),
    "server_reference": ("server_reference", lambda value, line: value),
    "server_moved": ("server_moved", _boolean),
    "response_information": ("response_information", lambda value, line: value),
    "mosquitto_compat": ("mosquitto_compat", _mosquitto_version),
    "reason_strings": ("reason_strings", _boolean),
    "upgrade_outgoing_qos": ("upgrade_outgoing_qos", _boolean),
    # mosquitto documents a check of the retained message's publisher against the ACL when it is sent;
    # mosquitto 2.0.11 and 2.0.21 send it all the same after the publisher lost write access (seen side
    # by side, tests/broker/test_dropin_keys.py), so refbroker sends it too, with either value
    "check_retain_source": ("check_retain_source", _boolean),
    "clientid_prefixes": ("clientid_prefixes", lambda value, line: value),
    "persistence": ("persistence", _boolean),
    "retained_persistence": ("persistence", _boolean),  # mosquitto's old name of `persistence`
    "persistence_file": ("persistence_file", lambda value, line: value),
    "persistence_location": ("persistence_location", lambda value, line: value),
    "autosave_interval": ("autosave_interval", _integer(0, 2**31 - 1)),
    "autosave_on_changes": ("autosave_on_changes", _boolean),
    "persistence_durable_acks": ("persistence_durable_acks", _boolean),
    "pid_file": ("pid_file", lambda value, line: value),
    "user": ("user", lambda value, line: value),
    "log_facility": ("log_facility", _integer(0, 7)),
    "log_timestamp": ("log_timestamp", _boolean),
    "log_timestamp_format": ("log_timestamp_format", lambda value, line: value),
    "connection_messages": ("connection_messages", _boolean),
}


def include_order(name: str) -> list[tuple[str, str]]:
    """mosquitto's order of the files of an include_dir: letters compared without case first, and for
    the same letter upper case first (00.conf, 01.conf, A.conf, a.conf, B.conf, b.conf)."""
    return [(character.upper(), character) for character in name]


class _Parser:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.depth = 0  # 0: the main config file; 1: a file of an include_dir
        self.log_types: set[str] | None = None
        self.default_port: int | None = None
        self.default_bind: str | None = None
        self.default_listener = Listener(DEFAULT_PORT)  # holds TLS keys given before any `listener`
        self.checks: list[tuple[Listener, _Line]] = []  # listeners to check once all their keys are read
        self.security_seen = False  # a key of _SECURITY_KEYS was read (per_listener_settings must come first)

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
        refusal = UNSUPPORTED_KEYS.get(f"{key} {value}") or next(
            (reason for prefix, reason in _UNSUPPORTED_PREFIXES.items() if key.startswith(prefix)), None)
        if refusal is not None:
            raise line.error(f"{key} {value}: {refusal}" if f"{key} {value}" in UNSUPPORTED_KEYS
                             else f"{key}: {refusal}")
        if key == "per_listener_settings" and value == "true" and self.security_seen:
            raise line.error("per_listener_settings must be set before any other security settings")
        if key in _SECURITY_KEYS:
            self.security_seen = True
            if settings.per_listener_settings:
                self._per_listener(key, value, line)
                return
        if key in _SIMPLE_KEYS:
            if not value and key != "auto_id_prefix":
                raise line.error(f"{key} needs a value")
            field, parse = _SIMPLE_KEYS[key]
            setattr(settings, field, parse(value, line))
        elif key == "use_username_as_clientid":
            self._current_listener().use_username_as_clientid = _boolean(value, line)
        elif key == "root_wildcard_users":
            names = value.replace(",", " ").split()
            if not names:
                raise line.error("root_wildcard_users needs at least one user name")
            settings.root_wildcard_users = frozenset(names)
        elif key == "root_wildcard_lifetime":
            settings.root_wildcard_lifetime = _integer(0, 2**31 - 1)(value, line)
        elif key == "listener":
            parts = value.split()
            if not 1 <= len(parts) <= 2:
                raise line.error("usage: listener PORT [BIND_ADDRESS | UNIX_SOCKET_PATH]")
            port = _integer(0, 65535)(parts[0], line)
            address = parts[1] if len(parts) == 2 else None
            if address is not None and "/" in address:
                # A Unix domain socket (mosquitto 2.0): the port must be 0
                if port != 0:
                    raise line.error("a Unix socket listener needs port 0: listener 0 /path/to/socket")
                settings.listeners.append(Listener(0, None, unix_socket=address))
            else:
                settings.listeners.append(Listener(port, address))
            self.checks.append((settings.listeners[-1], line))
        elif key == "socket_domain":
            if value not in ("ipv4", "ipv6"):
                raise line.error("socket_domain must be ipv4 or ipv6")
            self._current_listener().socket_domain = value
        elif key == "mount_point":
            if not value or "+" in value or "#" in value:
                raise line.error("mount_point needs a topic prefix without wildcards")
            self._current_listener().mount_point = value
        elif key == "log_dest":
            self._log_dest(value, line)
        elif key in MOSQUITTO_NOTICES:
            if key == "allow_duplicate_messages":
                _boolean(value, line)
            settings.ignored.append(MOSQUITTO_NOTICES[key])
        elif key == "set_tcp_nodelay":
            _boolean(value, line)  # true: what refbroker always does (false is refused above)
        elif key == "tls_keyform":
            if value != "pem":
                raise line.error("tls_keyform must be pem or engine (engine is not supported)")
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
            if key in ("certfile", "keyfile", "cafile", "dhparamfile", "crlfile") and not Path(value).is_file():
                raise line.error(f"{key} {value!r}: no such file")
            setattr(self._current_listener().tls, key, value)
        elif key == "max_connections":
            # A listener key, as in mosquitto: before any `listener` line it configures the default one
            # (port 1883). -1 (or any negative number) is no limit
            self._current_listener().max_connections = max(-1, _integer(-(2**31), 2**31 - 1)(value, line))
        elif key in _TLS_SWITCHES:
            setattr(self._current_listener().tls, key, _boolean(value, line))
        elif key in _AUTH_FILES:
            field, _ = _AUTH_FILES[key]
            setattr(settings, field, self._auth_file(key, value, line))
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
            if self.depth > 0:
                # mosquitto reads include_dir only in the main file, and skips it elsewhere
                settings.ignored.append(f"{line.path}:{line.number}: include_dir is only read in the main "
                                        "configuration file; this one is skipped (as mosquitto does)")
                return
            self.depth += 1
            try:
                for path in sorted((path for path in directory.iterdir() if path.name.endswith(".conf")
                                    and path.is_file()), key=lambda path: include_order(path.name)):
                    self.parse_file(path)
            finally:
                self.depth -= 1
        elif key in UNSUPPORTED_KEYS:
            raise line.error(f"{key}: {UNSUPPORTED_KEYS[key]}")
        else:
            raise line.error(f"unknown configuration key {key!r}{suggestion_text(key, KNOWN_KEYS)}")

    def _log_dest(self, value: str, line: _Line) -> None:
        """log_dest: the first one replaces the default (stderr); `none` drops those before it."""
        destination, _, argument = value.partition(" ")
        destinations = self.settings.log_dest
        if destination not in ("stderr", "stdout", "file", "topic", "syslog", "none"):
            raise line.error(f"Invalid log_dest value ({value}): stderr, stdout, file PATH, topic, syslog or none")
        if destination == "none":
            destinations[:] = [("none", None)]
            return
        if destinations == [("none", None)]:
            destinations.clear()
        if destination == "file":
            if not argument.strip():
                raise line.error("log_dest file needs the path of the log file")
            if any(kind == "file" for kind, _ in destinations):
                raise line.error("only one log_dest file may be configured")
            destinations.append(("file", argument.strip()))
        elif (destination, None) not in destinations:
            destinations.append((destination, None))

    def _current_listener(self) -> Listener:
        return self.settings.listeners[-1] if self.settings.listeners else self.default_listener

    @staticmethod
    def _auth_file(key: str, value: str, line: _Line):
        if not value:
            raise line.error(f"{key} needs a file")
        try:
            return _AUTH_FILES[key][1].load(value)
        except AuthFileError as error:
            raise line.error(f"{key}: {error}") from None

    def _per_listener(self, key: str, value: str, line: _Line) -> None:
        """A security key under per_listener_settings true: it belongs to the listener above it (before
        any `listener` line, to the default listener on port 1883, which it then opens, as mosquitto)."""
        listener = self._current_listener()
        if listener.security is None:
            listener.security = Security()
        security = listener.security
        if key in _AUTH_FILES:
            setattr(security, _AUTH_FILES[key][0], self._auth_file(key, value, line))
        elif key == "auto_id_prefix":
            security.auto_id_prefix = value
        else:
            setattr(security, key, _boolean(value, line))

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
            if tls.use_subject_as_username and not tls.require_certificate:
                raise line.error("use_subject_as_username needs require_certificate true")
            if tls.crlfile and not (tls.cafile or tls.capath):
                raise line.error("crlfile needs cafile or capath (client certificates are checked against both)")
            if settings.per_listener_settings and listener.security is None:
                listener.security = Security()  # nothing said for this listener: no anonymous clients
            if listener.unix_socket is not None and listener.protocol == "websockets":
                raise line.error("a Unix socket listener speaks MQTT only (protocol websockets needs a port)")
        if settings.persistence and not settings.persistence_file:
            raise ConfigError("persistence_file must not be empty")
        return settings


#: every key the reader accepts (for "did you mean" on a mistyped one)
KNOWN_KEYS = frozenset({*_SIMPLE_KEYS, *_TLS_KEYS, *_TLS_SWITCHES, *_AUTH_FILES, *MOSQUITTO_NOTICES,
                        *(key for key in UNSUPPORTED_KEYS if " " not in key),
                        "listener", "port", "bind_address", "protocol", "log_type", "include_dir", "socket_domain",
                        "mount_point", "log_dest", "set_tcp_nodelay", "tls_keyform", "max_connections",
                        "use_username_as_clientid", "root_wildcard_users", "root_wildcard_lifetime"})


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

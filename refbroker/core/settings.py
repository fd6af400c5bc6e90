"""The broker's settings, with the defaults of mosquitto 2.0.x.

refbroker is meant to stand in for mosquitto in other people's tests, so wherever the
specification leaves a choice (how many messages may be in flight, how long a queue may grow,
whether Maximum QoS is announced ...) the default here is what mosquitto 2.0.11 does out of the
box. Each field names the mosquitto.conf key it comes from; config.py turns a mosquitto.conf file
into a `Settings`. `mosquitto_compat` chooses the mosquitto version whose choices refbroker makes where
the specification allows several (compat.py): the handlers read them as `settings.compat`.
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .compat import DEFAULT_VERSION, VERSIONS, MosquittoCompat

if TYPE_CHECKING:
    from ..auth import AccessControlList, PasswordFile, ScramUsers

DEFAULT_PORT = 1883

# Log types of mosquitto.conf's `log_type`. "debug" carries the per-packet lines of -v.
LOG_TYPES = ("debug", "error", "warning", "notice", "information", "subscribe", "unsubscribe", "websockets")
DEFAULT_LOG_TYPES = frozenset({"error", "warning", "notice", "information"})
# The kind the core logs clients connecting and disconnecting with: a "notice" that the host leaves
# out when `connection_messages false` (as mosquitto does)
CONNECTION_MESSAGE = "connection"


@dataclass
class TlsOptions:
    """The TLS keys that follow a `listener` line (mosquitto.conf names). No certfile: plain TCP."""

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None              # CA(s) that sign client certificates
    capath: str | None = None
    require_certificate: bool = False      # clients must present a certificate signed by cafile/capath
    use_identity_as_username: bool = False  # the certificate's Common Name becomes the user name
    use_subject_as_username: bool = False   # the certificate's whole subject ("CN=...,O=...") is the user name
    crlfile: str | None = None             # PEM certificate revocation list checked for client certificates
    tls_version: str | None = None         # the lowest version accepted: tlsv1.3, tlsv1.2 or tlsv1.1
    ciphers: str | None = None             # OpenSSL cipher list (TLS 1.2 and below)
    dhparamfile: str | None = None         # Diffie-Hellman parameters (PEM) for the DHE ciphers

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


@dataclass
class Security:
    """Who may connect through a listener and what they may do there: the settings that mosquitto's
    `per_listener_settings true` makes per listener (password_file, acl_file, allow_anonymous,
    allow_zero_length_clientid, auto_id_prefix). Without per_listener_settings one Security, made from
    the global keys (`Settings.security_for`), applies to every listener."""

    allow_anonymous: bool = False
    passwords: PasswordFile | None = None
    acl: AccessControlList | None = None
    allow_zero_length_clientid: bool = True
    auto_id_prefix: str = "auto-"


@dataclass
class Listener:
    """One `listener PORT [BIND_ADDRESS]` line and the keys that follow it; None for the address
    means every interface. `protocol` is "mqtt" (TCP) or "websockets"; either may use TLS.
    `listener 0 PATH` (a path with a "/") is a Unix domain socket, as in mosquitto 2.0.
    `security` is set only with per_listener_settings: this listener's own authentication and ACL."""

    port: int
    host: str | None = None
    protocol: str = "mqtt"
    tls: TlsOptions = field(default_factory=TlsOptions)
    unix_socket: str | None = None  # `listener 0 /path/to/socket`: a Unix domain socket instead of TCP
    socket_domain: str | None = None  # "ipv4" or "ipv6": only that address family; None: both
    mount_point: str = ""           # prefixed to every topic of this listener's clients, removed on the way out
    max_connections: int = -1       # connections open on this listener at once; -1 = no limit
    use_username_as_clientid: bool = False  # the client id is replaced by the user name (none: refused)
    security: Security | None = None


@dataclass
class Settings:
    listeners: list[Listener] = field(default_factory=list)
    # None: decided by the listeners, as in mosquitto 2.0: with no listener configured the broker
    # runs in "local only" mode (loopback, anonymous allowed); once a listener is configured,
    # anonymous clients are refused unless `allow_anonymous true` is given.
    allow_anonymous: bool | None = None
    max_inflight_messages: int = 20        # outgoing QoS 1/2 window per client; our Receive Maximum too
    max_queued_messages: int = 1000        # per client, beyond the in-flight window; 0 = no limit
    max_queued_bytes: int = 0              # per client, payload bytes queued beyond the window; 0 = no limit
    max_inflight_bytes: int = 0            # per client, payload bytes of QoS 1/2 in flight; 0 = no limit
    memory_limit: int = 0                  # bytes of messages and buffers the broker may hold; 0 = no limit
    queue_qos0_messages: bool = False      # queue QoS 0 for offline persistent clients?
    max_packet_size: int | None = None     # 0 = no limit but the protocol's; else announced in CONNACK;
                                           # None: the mosquitto version's default (packet_size_limit)
    message_size_limit: int = 0            # largest payload accepted; 0 = no limit
    max_keepalive: int | None = None       # v5 clients asking for more (or for 0) get Server Keep Alive; 0: no
                                           # limit; None: the mosquitto version's default (keepalive_limit)
    retain_available: bool = True
    sys_interval: int = 10                 # seconds between $SYS updates; 0 disables them
    persistent_client_expiration: float | None = None  # seconds; None: persistent sessions never expire
    allow_zero_length_clientid: bool = True
    auto_id_prefix: str = "auto-"
    max_qos: int = 2
    max_topic_alias: int = 10              # announced as Topic Alias Maximum (v5)
    log_types: frozenset[str] = DEFAULT_LOG_TYPES
    per_listener_settings: bool = False
    # Authentication and authorisation (refbroker/auth): loaded by config.py from the files named by
    # password_file, acl_file and scram_users; None: not configured.
    passwords: PasswordFile | None = None
    acl: AccessControlList | None = None
    scram_users: ScramUsers | None = None
    # MQTT 5.0 extras that mosquitto 2.0 does not have, all off by default
    assign_topic_aliases: bool = False     # give clients Topic Aliases up to their Topic Alias Maximum
    server_reference: str | None = None    # redirect every client: CONNACK 0x9C (or 0x9D) + Server Reference
    server_moved: bool = False             # with server_reference: 0x9D Server moved instead of 0x9C
    response_information: str | None = None  # sent to clients that ask for it; %c = client id
    # Which mosquitto version's choices refbroker makes where the specification allows several (compat.py)
    mosquitto_compat: str = DEFAULT_VERSION
    # refbroker's own: 5.0 failure answers carry a Reason String that explains them (mosquitto sends none;
    # the explanation is always in the log)
    reason_strings: bool = False
    # mosquitto 2.0 options that are not about the protocol
    upgrade_outgoing_qos: bool = False     # deliver at the subscription's QoS even if published lower
    # check_retain_source: accepted like mosquitto, with mosquitto 2.0's observable effect (none, see config.py)
    check_retain_source: bool = True
    clientid_prefixes: str | None = None   # only client ids starting with this are accepted (deprecated)
    # Persistence (refbroker/persistence): an sqlite database at persistence_location/persistence_file
    persistence: bool = False
    persistence_file: str = "mosquitto.db"
    persistence_location: str = ""        # "": the current directory
    autosave_interval: int = 1800          # seconds between saves (0: only on exit and SIGUSR1) ...
    autosave_on_changes: bool = False      # ... or, if true, changes between saves
    persistence_durable_acks: bool = False  # refbroker's own: saved before every PUBACK/PUBREC/packet sent
    # The process (cli.py, process.py): not used by the core
    pid_file: str | None = None
    user: str | None = None                # drop privileges to this user after binding (when run as root)
    log_dest: list[tuple[str, str | None]] = field(default_factory=list)  # (stderr|stdout|file|topic|syslog|none, file)
    log_facility: int | None = None        # syslog facility local0..local7; None: daemon
    log_timestamp: bool = True
    log_timestamp_format: str | None = None  # strftime format; None: seconds since the epoch
    connection_messages: bool = True       # log clients connecting and disconnecting
    # The test server's subscription rules (refbroker only; test.mosquitto.org has them, mosquitto.conf
    # cannot say them): a subscription to exactly "#" is refused unless the user is one of
    # root_wildcard_users, and theirs is removed after root_wildcard_lifetime seconds (0: kept).
    root_wildcard_users: frozenset[str] | None = None  # None: "#" is like any other filter
    root_wildcard_lifetime: int = 0
    # Keys accepted from a config file but not acted on, kept so -v can say so.
    ignored: list[str] = field(default_factory=list)

    @property
    def persistence_path(self) -> str:
        """Where the database is: persistence_location + persistence_file, as mosquitto joins them."""
        return os.path.join(self.persistence_location or ".", self.persistence_file)

    @property
    def anonymous_allowed(self) -> bool:
        if self.allow_anonymous is not None:
            return self.allow_anonymous
        return not self.listeners  # mosquitto 2.0 "local only" mode

    @property
    def acl_anywhere(self) -> bool:
        """May any connection be held to an ACL? (False: the global one is unset and listeners have
        none of their own: reading and writing rights need no look.)"""
        return self.acl is not None or self.per_listener_settings

    def security_for(self, listener: Listener | None) -> Security:
        """The authentication and ACL settings for a connection that came in on `listener`: its own
        with per_listener_settings, else the global ones (also for a listener made outside the config)."""
        if self.per_listener_settings and listener is not None and listener.security is not None:
            return listener.security
        fields = (self.anonymous_allowed, self.passwords, self.acl, self.allow_zero_length_clientid,
                  self.auto_id_prefix)
        # Asked for every message routed: the one made last is reused while the global keys stay the same
        cached = self.__dict__.get("_global_security")
        if cached is None or cached[0] != fields:
            cached = self.__dict__["_global_security"] = (fields, Security(*fields))
        return cached[1]

    @property
    def compat(self) -> MosquittoCompat:
        """The choices of the mosquitto version `mosquitto_compat` names."""
        return VERSIONS[self.mosquitto_compat]

    @property
    def packet_size_limit(self) -> int:
        """The Maximum Packet Size in force: max_packet_size, or the mosquitto version's default (0: none)."""
        if self.max_packet_size is not None:
            return self.max_packet_size
        return self.compat.default_max_packet_size

    @property
    def keepalive_limit(self) -> int:
        """The max_keepalive in force: the configured one, or the mosquitto version's default (0: none)."""
        if self.max_keepalive is not None:
            return self.max_keepalive
        return self.compat.default_max_keepalive

    @property
    def receive_maximum(self) -> int:
        """What we announce as Receive Maximum: mosquitto uses max_inflight_messages (0 = unlimited)."""
        if self.max_inflight_messages <= 0:
            return 65535
        return min(self.max_inflight_messages, 65535)

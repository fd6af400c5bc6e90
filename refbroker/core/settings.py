"""The broker's settings, with the defaults of mosquitto 2.0.x.

refbroker is meant to stand in for mosquitto in other people's tests, so wherever the
specification leaves a choice (how many messages may be in flight, how long a queue may grow,
whether Maximum QoS is announced ...) the default here is what mosquitto 2.0.11 does out of the
box. Each field names the mosquitto.conf key it comes from; config.py turns a mosquitto.conf file
into a `Settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..auth import AccessControlList, PasswordFile, ScramUsers

DEFAULT_PORT = 1883

# Log types of mosquitto.conf's `log_type`. "debug" carries the per-packet lines of -v.
LOG_TYPES = ("debug", "error", "warning", "notice", "information", "subscribe", "unsubscribe", "websockets")
DEFAULT_LOG_TYPES = frozenset({"error", "warning", "notice", "information"})


@dataclass
class TlsOptions:
    """The TLS keys that follow a `listener` line (mosquitto.conf names). No certfile: plain TCP."""

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None              # CA(s) that sign client certificates
    capath: str | None = None
    require_certificate: bool = False      # clients must present a certificate signed by cafile/capath
    use_identity_as_username: bool = False  # the certificate's Common Name becomes the user name
    tls_version: str | None = None         # the lowest version accepted: tlsv1.3, tlsv1.2 or tlsv1.1
    ciphers: str | None = None             # OpenSSL cipher list (TLS 1.2 and below)

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


@dataclass
class Listener:
    """One `listener PORT [BIND_ADDRESS]` line and the keys that follow it; None for the address
    means every interface. `protocol` is "mqtt" (TCP) or "websockets"; either may use TLS."""

    port: int
    host: str | None = None
    protocol: str = "mqtt"
    tls: TlsOptions = field(default_factory=TlsOptions)


@dataclass
class Settings:
    listeners: list[Listener] = field(default_factory=list)
    # None: decided by the listeners, as in mosquitto 2.0: with no listener configured the broker
    # runs in "local only" mode (loopback, anonymous allowed); once a listener is configured,
    # anonymous clients are refused unless `allow_anonymous true` is given.
    allow_anonymous: bool | None = None
    max_inflight_messages: int = 20        # outgoing QoS 1/2 window per client; our Receive Maximum too
    max_queued_messages: int = 1000        # per client, beyond the in-flight window; 0 = no limit
    queue_qos0_messages: bool = False      # queue QoS 0 for offline persistent clients?
    max_packet_size: int = 0               # 0 = no limit but the protocol's; else announced in CONNACK
    message_size_limit: int = 0            # largest payload accepted; 0 = no limit
    max_keepalive: int = 65535             # v5 clients asking for more get Server Keep Alive
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
    # Keys accepted from a config file but not acted on, kept so -v can say so.
    ignored: list[str] = field(default_factory=list)

    @property
    def anonymous_allowed(self) -> bool:
        if self.allow_anonymous is not None:
            return self.allow_anonymous
        return not self.listeners  # mosquitto 2.0 "local only" mode

    @property
    def receive_maximum(self) -> int:
        """What we announce as Receive Maximum: mosquitto uses max_inflight_messages (0 = unlimited)."""
        if self.max_inflight_messages <= 0:
            return 65535
        return min(self.max_inflight_messages, 65535)

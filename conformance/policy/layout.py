"""The test server a policy run checks: where it is, its listeners, its CAs, users and rules.

Two sources:

- a `layout.json` that `refbroker --test-server --out DIR` writes (DIR/layout.json): a local replica,
  run by refbroker (DIR/refbroker.conf) or by mosquitto (DIR/mosquitto.conf);
- `public`: test.mosquitto.org itself, on its published ports. Its CA certificate (mosquitto.org.crt,
  from the server's web page) is given with --policy-cafile; its Let's Encrypt port is checked against
  the system's CAs; its client-certificate port needs a certificate the server's page issues
  (--policy-client-cert / --policy-client-key), else that check is not applicable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..transports import Endpoint

PUBLIC_HOST = "test.mosquitto.org"

#: test.mosquitto.org: port, transport, authenticated, certificate, client certificate, purpose
PUBLIC_LISTENERS = (
    (1883, "tcp", False, "", False, "MQTT, unencrypted, unauthenticated"),
    (1884, "tcp", True, "", False, "MQTT, unencrypted, authenticated"),
    (8883, "tls", False, "main", False, "MQTT, encrypted, unauthenticated"),
    (8884, "tls", False, "main", True, "MQTT, encrypted, client certificate required"),
    (8885, "tls", True, "main", False, "MQTT, encrypted, authenticated"),
    (8886, "tls", False, "second-ca", False, "MQTT, encrypted, unauthenticated, Let's Encrypt certificate"),
    (8887, "tls", False, "expired", False, "MQTT, encrypted, server certificate deliberately expired"),
    (8080, "ws", False, "", False, "MQTT over WebSockets, unencrypted, unauthenticated"),
    (8081, "wss", False, "main", False, "MQTT over WebSockets, encrypted, unauthenticated"),
    (8090, "ws", True, "", False, "MQTT over WebSockets, unencrypted, authenticated"),
    (8091, "wss", True, "main", False, "MQTT over WebSockets, encrypted, authenticated"),
)
PUBLIC_USERS = {"rw": "readwrite", "ro": "readonly", "wo": "writeonly", "wildcard": "wildcard"}


@dataclass(frozen=True)
class PolicyListener:
    port: int
    public_port: int
    transport: str
    authenticated: bool
    certificate: str          # "", "main", "second-ca" or "expired"
    client_certificate: bool
    purpose: str

    @property
    def id(self) -> str:
        """Stable across replicas: the public server's port and the transport, e.g. "8883-tls"."""
        return f"{self.public_port}-{self.transport}"


@dataclass
class PolicyLayout:
    host: str
    ca: str | None                   # the CA of the "main" certificates (None: the system's CAs)
    second_ca: str | None            # the CA of the "second-ca" listener (None: the system's CAs)
    client_cert: str | None
    client_key: str | None
    users: dict[str, str]
    root_wildcard_user: str
    root_wildcard_lifetime: int
    listeners: list[PolicyListener] = field(default_factory=list)
    source: str = ""

    def endpoint(self, listener: PolicyListener, *, cafile: str | None | bool = True) -> Endpoint:
        """How to reach `listener`; `cafile` True: the CA its certificate should come from."""
        if cafile is True:
            cafile = self.second_ca if listener.certificate == "second-ca" else self.ca
        return Endpoint(listener.transport, self.host, listener.port, cafile=cafile or None)

    def first(self, **wanted) -> PolicyListener:
        for listener in self.listeners:
            if all(getattr(listener, key) == value for key, value in wanted.items()):
                return listener
        raise LookupError(f"the layout has no listener with {wanted}")


def load_layout(text: str, *, cafile: str | None = None, client_cert: str | None = None,
                client_key: str | None = None) -> PolicyLayout:
    """`public`, or the path of a layout.json (or of the directory that holds it). ValueError if unusable."""
    if text == "public":
        listeners = [PolicyListener(port, port, transport, auth, cert, client, purpose)
                     for port, transport, auth, cert, client, purpose in PUBLIC_LISTENERS]
        return PolicyLayout(PUBLIC_HOST, cafile, None, client_cert, client_key, dict(PUBLIC_USERS), "wildcard", 20,
                            listeners, "public")
    path = Path(text)
    if path.is_dir():
        path = path / "layout.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        listeners = [PolicyListener(**entry) for entry in data["listeners"]]
        client = data.get("client_certificate") or {}
        return PolicyLayout(data["host"], cafile or data.get("ca"), data.get("second_ca"),
                            client_cert or client.get("cert"), client_key or client.get("key"), dict(data["users"]),
                            data["root_wildcard_user"], int(data["root_wildcard_lifetime"]), listeners, str(path))
    except OSError as exc:
        raise ValueError(f"--policy-layout {text}: cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--policy-layout {text}: {path} is not a test server layout ({exc!r})") from None

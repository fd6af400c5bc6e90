"""The listener set of test.mosquitto.org, on local ports, as files both refbroker and mosquitto load.

    layout = write_test_server(Path("test-server"), base_port=None)   # the public server's ports
    layout.table()                    # port -> what it is for
    # refbroker -c test-server/refbroker.conf      (the policy in full)
    # mosquitto -c test-server/mosquitto.conf      (the same listeners, users and ACL)

The public server (test.mosquitto.org) offers one listener per way of connecting; `LISTENERS` lists
them with its port numbers. With `base_port` N the listeners take N, N+1, ... N+10 in that order.

Policy (what the public page describes):
- unauthenticated listeners accept anonymous clients, who may publish and subscribe anywhere, except
  a subscription to exactly "#" (every topic);
- authenticated listeners accept only the users rw/readwrite (read and write everything), ro/readonly
  (read only), wo/writeonly (write only), and wildcard/wildcard (read and write everything, and the
  only one who may subscribe to "#"; that subscription is removed after 20 seconds);
- TLS listeners use a certificate of this directory's CA (ca.crt), except the "second CA" one (the
  public server's Let's Encrypt port: a certificate of another CA, second-ca.crt) and the "expired"
  one (a certificate of ca.crt that expired yesterday); the client-certificate listener accepts only
  clients with a certificate of ca.crt (`python -m refbroker.testserver client-cert DIR NAME`).

Files written to the directory:

    mosquitto.conf     the listeners, per_listener_settings, passwords and ACL: mosquitto 2.0 loads it
    refbroker.conf     the same plus what mosquitto.conf cannot say: the rules for "#" (refbroker keys
                       root_wildcard_users and root_wildcard_lifetime)
    passwords, acl     mosquitto's password file ($7$ hashes) and ACL file
    ca.crt, ca.key     the CA (ca.key stays private to its owner: it signs client certificates)
    second-ca.crt      the second CA; server*.crt/key the listeners' certificates
    layout.json        ports, purposes, CA files and users, for the policy tests (conformance.policy)

All paths in the config files are absolute, so both brokers can be started from anywhere. Key files
of the listeners are world-readable: mosquitto started as root reads them as user mosquitto. These
are test credentials on the loopback interface; do not reuse them.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from ..auth.passwords import PasswordHash
from .certificates import CertificateAuthority

#: user -> (password, what the user may do); as on the public page
USERS = {
    "rw": ("readwrite", "read and write every topic"),
    "ro": ("readonly", "read every topic, write none"),
    "wo": ("writeonly", "write every topic, read none"),
    "wildcard": ("wildcard", "read and write every topic; the only one who may subscribe to '#' (for 20 s)"),
}
ROOT_WILDCARD_USER = "wildcard"
ROOT_WILDCARD_LIFETIME = 20  # seconds a subscription to "#" lasts

ACL_TEXT = """\
# test server ACL (mosquitto acl_file format), used by the authenticated listeners only
user rw
topic readwrite #

user ro
topic read #

user wo
topic write #

user wildcard
topic readwrite #
"""


@dataclass(frozen=True)
class ListenerSpec:
    public_port: int
    transport: str          # tcp, tls, ws or wss
    authenticated: bool     # users only (password file), no anonymous clients
    certificate: str = ""   # "", "main", "second-ca" or "expired" (which server certificate it shows)
    client_certificate: bool = False  # a client certificate of ca.crt is required
    purpose: str = ""


LISTENERS = (
    ListenerSpec(1883, "tcp", False, purpose="MQTT, unencrypted, unauthenticated"),
    ListenerSpec(1884, "tcp", True, purpose="MQTT, unencrypted, authenticated"),
    ListenerSpec(8883, "tls", False, "main", purpose="MQTT, encrypted, unauthenticated"),
    ListenerSpec(8884, "tls", False, "main", True, purpose="MQTT, encrypted, client certificate required"),
    ListenerSpec(8885, "tls", True, "main", purpose="MQTT, encrypted, authenticated"),
    ListenerSpec(8886, "tls", False, "second-ca",
                 purpose="MQTT, encrypted, unauthenticated, certificate of a second CA (the public server's "
                         "Let's Encrypt port)"),
    ListenerSpec(8887, "tls", False, "expired", purpose="MQTT, encrypted, server certificate deliberately expired"),
    ListenerSpec(8080, "ws", False, purpose="MQTT over WebSockets, unencrypted, unauthenticated"),
    ListenerSpec(8081, "wss", False, "main", purpose="MQTT over WebSockets, encrypted, unauthenticated"),
    ListenerSpec(8090, "ws", True, purpose="MQTT over WebSockets, unencrypted, authenticated"),
    ListenerSpec(8091, "wss", True, "main", purpose="MQTT over WebSockets, encrypted, authenticated"),
)


@dataclass(frozen=True)
class PlacedListener:
    port: int
    public_port: int
    transport: str
    authenticated: bool
    certificate: str
    client_certificate: bool
    purpose: str


@dataclass
class TestServerLayout:
    """What write_test_server wrote: where, on which ports, with which files."""

    __test__ = False  # not a pytest test class, whatever its name

    directory: Path
    host: str
    listeners: list[PlacedListener]

    @property
    def mosquitto_conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def refbroker_conf(self) -> Path:
        return self.directory / "refbroker.conf"

    def file(self, name: str) -> Path:
        return self.directory / name

    def table(self) -> str:
        """port -> what it is for, one line each, as printed when the server starts."""
        lines = [f"{'port':>6}  {'test.mosquitto.org':>18}  what it is for"]
        for listener in self.listeners:
            lines.append(f"{listener.port:>6}  {listener.public_port:>18}  {listener.purpose}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "host": self.host,
            "ca": str(self.file("ca.crt")),
            "second_ca": str(self.file("second-ca.crt")),
            "client_certificate": {"cert": str(self.file("client.crt")), "key": str(self.file("client.key"))},
            "users": {name: password for name, (password, _) in USERS.items()},
            "root_wildcard_user": ROOT_WILDCARD_USER,
            "root_wildcard_lifetime": ROOT_WILDCARD_LIFETIME,
            "listeners": [asdict(listener) for listener in self.listeners],
        }


def ports_for(base_port: int | None) -> list[int]:
    """The public server's ports, or base_port, base_port + 1, ... in LISTENERS order."""
    if base_port is None:
        return [spec.public_port for spec in LISTENERS]
    if not 1 <= base_port <= 65535 - len(LISTENERS) + 1:
        raise ValueError(f"--base-port must be 1..{65535 - len(LISTENERS) + 1}, got {base_port}")
    return [base_port + index for index in range(len(LISTENERS))]


def free_base_port(host: str = "127.0.0.1", start: int = 20000, stop: int = 60000) -> int:
    """A base port whose len(LISTENERS) consecutive ports are all free now (for tests)."""
    import random

    for _ in range(200):
        base = random.randrange(start, stop - len(LISTENERS))
        if all(_port_free(host, base + index) for index in range(len(LISTENERS))):
            return base
    raise RuntimeError(f"no {len(LISTENERS)} consecutive free ports found on {host}")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def write_test_server(directory: str | os.PathLike, *, base_port: int | None = None,
                      host: str = "127.0.0.1", hostnames: tuple[str, ...] = ("localhost",)) -> TestServerLayout:
    """Write the certificates, password file, ACL and both configs into `directory` (created if needed).

    An existing CA in the directory is kept (client certificates issued with it stay valid); every
    other file is written anew."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    if ca_crt.exists() and ca_key.exists():
        ca = CertificateAuthority.load(ca_crt, ca_key)
    else:
        ca = CertificateAuthority.create("refbroker test server CA")
        ca.save(ca_crt, ca_key)
    second = CertificateAuthority.create("refbroker test server second CA", "refbroker second CA")
    second.save(directory / "second-ca.crt", directory / "second-ca.key")
    hosts = [host, *hostnames]
    ca.issue("localhost", hosts=hosts).save(directory / "server.crt", directory / "server.key")
    second.issue("localhost", hosts=hosts).save(directory / "server-second-ca.crt", directory / "server-second-ca.key")
    ca.issue("localhost", hosts=hosts, expired=True).save(directory / "server-expired.crt",
                                                           directory / "server-expired.key")
    ca.issue("test-server-client", client=True).save(directory / "client.crt", directory / "client.key")
    passwords = "".join(f"{name}:{PasswordHash.create(password)}\n" for name, (password, _) in USERS.items())
    _write_text(directory / "passwords", passwords)
    _write_text(directory / "acl", ACL_TEXT)
    placed = [PlacedListener(port, spec.public_port, spec.transport, spec.authenticated, spec.certificate,
                             spec.client_certificate, spec.purpose)
              for port, spec in zip(ports_for(base_port), LISTENERS)]
    layout = TestServerLayout(directory, host, placed)
    mosquitto = mosquitto_config(layout)
    _write_text(directory / "mosquitto.conf", mosquitto)
    _write_text(directory / "refbroker.conf", mosquitto + refbroker_extras())
    _write_text(directory / "layout.json", json.dumps(layout.to_json(), indent=1) + "\n")
    return layout


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)


_CERTIFICATE_FILES = {"main": "server", "second-ca": "server-second-ca", "expired": "server-expired"}


def mosquitto_config(layout: TestServerLayout) -> str:
    """mosquitto.conf text of the layout (refbroker reads it too)."""
    directory = layout.directory
    lines = [
        "# The listener set of test.mosquitto.org on local ports (python -m refbroker.testserver).",
        "# mosquitto 2.0 and refbroker both load this file; refbroker.conf adds the rules for '#'.",
        "per_listener_settings true",
        "",
    ]
    for listener in layout.listeners:
        lines.append(f"# {listener.purpose} (test.mosquitto.org: {listener.public_port})")
        lines.append(f"listener {listener.port} {layout.host}")
        if listener.transport in ("ws", "wss"):
            lines.append("protocol websockets")
        if listener.certificate:
            name = _CERTIFICATE_FILES[listener.certificate]
            lines += [f"certfile {directory / (name + '.crt')}", f"keyfile {directory / (name + '.key')}"]
        if listener.client_certificate:
            lines += [f"cafile {directory / 'ca.crt'}", "require_certificate true"]
        if listener.authenticated:
            lines += ["allow_anonymous false", f"password_file {directory / 'passwords'}",
                      f"acl_file {directory / 'acl'}"]
        else:
            lines.append("allow_anonymous true")
        lines.append("")
    return "\n".join(lines)


def refbroker_extras() -> str:
    return "\n".join([
        "# refbroker only: test.mosquitto.org's rules for '#', which mosquitto.conf cannot express",
        f"root_wildcard_users {ROOT_WILDCARD_USER}",
        f"root_wildcard_lifetime {ROOT_WILDCARD_LIFETIME}",
        "",
    ])


def issue_client_certificate(directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """A client certificate (Common Name `name`) from the test server's CA in `directory`:
    DIR/clients/NAME.crt and NAME.key. For the client-certificate listener."""
    directory = Path(directory)
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    if not (ca_crt.exists() and ca_key.exists()):
        raise FileNotFoundError(f"{directory} has no test server CA (ca.crt and ca.key): "
                                f"run refbroker --test-server --out {directory} first")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a client name must be a plain name, got {name!r}")
    issued = CertificateAuthority.load(ca_crt, ca_key).issue(name, client=True)
    return issued.save(directory / "clients" / f"{name}.crt", directory / "clients" / f"{name}.key")

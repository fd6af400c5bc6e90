"""The ways a client reaches a broker: MQTT over TCP, TLS, WebSocket, and WebSocket over TLS.

    endpoint = Endpoint("tls", "127.0.0.1", 8883, cafile="ca.crt")
    sock = open_stream(endpoint, timeout=5)          # a connected (TLS) socket, for tcp and tls
    RawClient(endpoint=endpoint, version=5)          # the suite's client over any of the four

`--transport tcp|tls|ws|wss` runs the conformance suite over one of them: every client the tests make
through `client_factory` uses the target's endpoint for it (`BrokerTarget.endpoint`). A target offers
a transport when it has a listener for it: refbroker and mosquitto targets open TLS and WebSocket
listeners with certificates made for the run (`SuiteListeners`); any target may declare them in its
profile (`[tls]`, `[wss]`, `[websocket]`).

`SuiteListeners` writes a CA and a server certificate for 127.0.0.1/localhost into a directory and
gives the mosquitto.conf lines of a TLS, a WebSocket and a WebSocket-over-TLS listener; refbroker and
mosquitto (local or in Docker) load the same lines.
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TRANSPORTS", "Endpoint", "SuiteListeners", "add_options", "check_options", "open_stream"]

#: every transport, in the order the suite names them
TRANSPORTS = ("tcp", "tls", "ws", "wss")


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect. `cafile` is the CA that signed the server's certificate (None: the
    system's trust store); `certfile`/`keyfile` a client certificate to present; `server_hostname` the
    name the certificate must carry (default: `host`)."""

    transport: str
    host: str
    port: int
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    server_hostname: str | None = None

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}: expected one of {', '.join(TRANSPORTS)}")

    @property
    def secure(self) -> bool:
        return self.transport in ("tls", "wss")

    @property
    def websocket(self) -> bool:
        return self.transport in ("ws", "wss")

    @property
    def url(self) -> str:
        scheme = {"tcp": "mqtt", "tls": "mqtts", "ws": "ws", "wss": "wss"}[self.transport]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}" + ("/mqtt" if self.websocket else "")

    def ssl_context(self, *, minimum_version: ssl.TLSVersion | None = None,
                    maximum_version: ssl.TLSVersion | None = None) -> ssl.SSLContext | None:
        """The client's TLS settings for this endpoint (None for tcp and ws): the server's certificate
        is verified against `cafile` (or the system's CAs) and its name checked."""
        if not self.secure:
            return None
        context = ssl.create_default_context(cafile=self.cafile)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        if minimum_version is not None:
            context.minimum_version = minimum_version
        if maximum_version is not None:
            context.maximum_version = maximum_version
        return context

    def with_client_certificate(self, certfile: str, keyfile: str) -> Endpoint:
        return Endpoint(self.transport, self.host, self.port, self.cafile, certfile, keyfile, self.server_hostname)


def open_stream(endpoint: Endpoint, timeout: float, context: ssl.SSLContext | None = None) -> socket.socket:
    """A connected socket for a tcp or tls endpoint (the TLS handshake done). Raises OSError, and
    ssl.SSLError (an OSError) when the handshake fails: its text says why (certificate expired, unknown
    CA, no client certificate ...)."""
    if endpoint.websocket:
        raise ValueError(f"{endpoint.url}: a WebSocket endpoint has no plain stream; use RawClient")
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not endpoint.secure:
        return sock
    context = context or endpoint.ssl_context()
    try:
        return context.wrap_socket(sock, server_hostname=endpoint.server_hostname or endpoint.host)
    except BaseException:
        sock.close()
        raise


class SuiteListeners:
    """TLS, WebSocket and WebSocket-over-TLS listeners for a broker the suite starts.

        listeners = SuiteListeners(directory)         # writes ca.crt, server.crt, server.key
        lines = listeners.config_lines({"tls": 8883, "ws": 8080, "wss": 8081}, "/path/as/the/broker/sees/it")
        listeners.endpoint("tls", "127.0.0.1", published_port)

    The files are world-readable (mosquitto started as root reads them as user mosquitto); the CA key
    is not written at all: nothing else is ever signed with it.
    """

    def __init__(self, directory: str | os.PathLike, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")):
        from refbroker.testserver.certificates import CertificateAuthority  # cryptography, loaded on use

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o755)
        ca = CertificateAuthority.create("mqtt conformance suite CA")
        self.cafile = str(self.directory / "ca.crt")
        (self.directory / "ca.crt").write_bytes(ca.cert_pem)
        os.chmod(self.cafile, 0o644)
        ca.issue("localhost", hosts=hosts).save(self.directory / "server.crt", self.directory / "server.key")

    def config_lines(self, ports: dict[str, int], directory_seen_by_broker: str | None = None,
                     bind: str | None = None) -> list[str]:
        """mosquitto.conf lines for a listener per transport of `ports` (tls, ws, wss); `bind` the
        address to listen on (None: all), `directory_seen_by_broker` where the broker finds this
        directory (inside a container it differs)."""
        where = directory_seen_by_broker or str(self.directory)
        lines = []
        for transport, port in ports.items():  # in the order given (a broker may list its ports so)
            if transport not in ("tls", "ws", "wss"):
                raise ValueError(f"SuiteListeners makes tls, ws and wss listeners, not {transport!r}")
            lines.append(f"listener {port}" + (f" {bind}" if bind else ""))
            if transport in ("ws", "wss"):
                lines.append("protocol websockets")
            if transport in ("tls", "wss"):
                lines += [f"certfile {where}/server.crt", f"keyfile {where}/server.key"]
        return lines

    def endpoint(self, transport: str, host: str, port: int) -> Endpoint:
        return Endpoint(transport, host, port, cafile=self.cafile if transport in ("tls", "wss") else None)


# ------------------------------------------------------------------------------- the plugin's option


def add_options(group) -> None:
    """`--transport`, added to the plugin's option group (plugin.py calls this)."""
    group.addoption("--transport", default="tcp", choices=TRANSPORTS,
                    help="how the suite's clients reach the broker: tcp (default), tls, ws (WebSocket) or wss "
                         "(WebSocket over TLS); refbroker and mosquitto targets open the listeners themselves, "
                         "other targets declare them in their profile ([tls], [websocket], [wss])")


def check_options(config) -> str:
    """The chosen transport; a usage error for combinations that cannot work."""
    transport = config.getoption("--transport")
    if transport != "tcp" and config.getoption("--capture-dir", None):
        import pytest

        raise pytest.UsageError("--capture-dir records plain TCP sessions only: leave out --transport "
                                f"{transport}, or record with --transport tcp")
    return transport

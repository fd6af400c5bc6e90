"""AUTH: the steps of enhanced authentication (5.0 4.12) and re-authentication (5.0 4.12.1).

A CONNECT with an Authentication Method starts an exchange (`begin`; the methods are in
auth_methods.py). Each piece of Authentication Data from the client goes to `advance`, which answers
with an `AuthResult`:

    Continue(data)            send AUTH 0x18 with this data and wait for the client [MQTT-4.12.0-2]
    Accepted(username, data)  the client proved who it is: CONNACK 0x00, or AUTH 0x00 after re-authentication
    Refused(reason)           it did not: CONNACK 0x87, or DISCONNECT 0x87 after re-authentication

Before CONNACK, connect.py acts on the result (`on_auth_before_connack`); after it, `on_auth` here
runs a re-authentication. `check_auth` holds the rules every AUTH from a client must follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import Auth, Disconnect, Properties, ProtocolError, ReasonCode
from .auth_methods import AuthenticationFailed
from .connection import Connection
from .context import Context
from .lifecycle import close
from .states import CONNECTED


@dataclass(frozen=True)
class Continue:
    data: bytes | None  # Authentication Data for the AUTH 0x18


@dataclass(frozen=True)
class Accepted:
    username: str | None  # who the client is
    data: bytes | None    # the method's final data, for CONNACK 0x00 or AUTH 0x00


@dataclass(frozen=True)
class Refused:
    reason: str


AuthResult = Continue | Accepted | Refused


def begin(ctx: Context, conn: Connection, method: str) -> bool:
    """Start an exchange of `method` for this connection; False if the broker does not offer it."""
    factory = ctx.auth_methods.get(method)
    if factory is None:
        return False
    conn.auth_method, conn.auth_exchange = method, factory()
    return True


def advance(conn: Connection, data: bytes | None) -> AuthResult:
    """Give the client's Authentication Data to the exchange in progress; the exchange ends unless
    the result is `Continue`."""
    try:
        step = conn.auth_exchange.step(data)
    except AuthenticationFailed as error:
        conn.auth_exchange = None
        return Refused(str(error))
    if not step.done:
        return Continue(step.data)
    conn.auth_exchange = None
    return Accepted(step.username, step.data)


def properties(conn: Connection, data: bytes | None) -> Properties:
    """The Authentication Method (always the CONNECT's [MQTT-4.12.0-5]) and Data of an AUTH or CONNACK."""
    return Properties(authentication_method=conn.auth_method, authentication_data=data)


def check_auth(conn: Connection, auth: Auth) -> None:
    """ProtocolError for an AUTH the client may not send now."""
    if conn.auth_method is None:
        # No Authentication Method in CONNECT, so no AUTH may follow [MQTT-4.12.0-7]
        raise ProtocolError("AUTH without an authentication method in CONNECT", rule="MQTT-4.12.0-7",
                            kind="AUTH without Authentication Method in CONNECT")
    if auth.properties.authentication_method != conn.auth_method:
        # The method of CONNECT, always [MQTT-4.12.0-5], also to re-authenticate [MQTT-4.12.1-1]
        raise ProtocolError(f"AUTH with method {auth.properties.authentication_method!r}, not "
                            f"{conn.auth_method!r}", rule="MQTT-4.12.0-5")
    if auth.reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
        if conn.auth_exchange is None:
            # 0x18 only answers our AUTH 0x18 [MQTT-4.12.0-3]
            raise ProtocolError("AUTH 0x18 but no authentication is in progress", rule="MQTT-4.12.0-3")
    elif auth.reason_code == ReasonCode.RE_AUTHENTICATE:
        if conn.state is not CONNECTED or conn.auth_exchange is not None:
            # Re-authentication starts after CONNACK, and not in the middle of another (4.12.1)
            raise ProtocolError("AUTH 0x19 while an authentication is in progress")
    else:
        raise ProtocolError(f"a client sends AUTH 0x18 or 0x19, not 0x{auth.reason_code:02X}")


def on_auth(ctx: Context, conn: Connection, auth: Auth, now: float) -> None:
    """AUTH after CONNACK: a re-authentication starts (0x19) or goes on (0x18) (5.0 4.12.1)."""
    check_auth(conn, auth)
    if auth.reason_code == ReasonCode.RE_AUTHENTICATE:
        begin(ctx, conn, conn.auth_method)  # the method was offered at CONNECT, so it still is
    result = advance(conn, auth.properties.authentication_data)
    outbox = ctx.outbox
    if isinstance(result, Continue):
        # More is needed: AUTH 0x18 [MQTT-4.12.0-2], with the same method [MQTT-4.12.0-5]
        outbox.send(conn, Auth(ReasonCode.CONTINUE_AUTHENTICATION, properties(conn, result.data)))
    elif isinstance(result, Refused):
        # Failed re-authentication: DISCONNECT 0x87, then close [MQTT-4.12.1-2]
        ctx.log("notice", f"Client {conn.name} failed to re-authenticate: {result.reason}")
        outbox.send(conn, Disconnect(ReasonCode.NOT_AUTHORIZED, outbox.failure_properties(conn, result.reason)))
        close(ctx, conn, now, publish_will=True, reason="re-authentication failed")
    elif result.username != conn.username:
        # Re-authentication may not change who the client is (a choice 4.12.1 allows)
        outbox.send(conn, Disconnect(ReasonCode.NOT_AUTHORIZED,
                                     outbox.failure_properties(conn, "re-authentication as another user")))
        close(ctx, conn, now, publish_will=True, reason="re-authentication as another user")
    else:
        outbox.send(conn, Auth(ReasonCode.SUCCESS, properties(conn, result.data)))  # done (4.12.1)

"""AUTH: enhanced authentication (5.0 4.12) and re-authentication (5.0 4.12.1).

A CONNECT with an Authentication Method starts an exchange (enhanced_auth.py has the methods);
each AUTH from the client is one step of it, until the method accepts (CONNACK 0x00, or AUTH 0x00
after a re-authentication) or refuses (CONNACK 0x87, or DISCONNECT 0x87).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import (
    Auth,
    Disconnect,
    Properties,
    ProtocolError,
    ReasonCode,
)
from . import connect
from .connection import AUTHENTICATING, CONNECTED, Connection
from .enhanced_auth import AuthenticationFailed
from .lifecycle import close

if TYPE_CHECKING:
    from .broker import Broker


def on_auth(broker: Broker, conn: Connection, auth: Auth, now: float) -> None:
    """AUTH from the client: the next step of an authentication, or the start of a re-authentication."""
    if conn.auth_method is None:
        # No Authentication Method in CONNECT, so no AUTH may follow [MQTT-4.12.0-7]
        raise ProtocolError("AUTH without an authentication method in CONNECT", rule="MQTT-4.12.0-7")
    if auth.properties.authentication_method != conn.auth_method:
        # The method of CONNECT, always [MQTT-4.12.0-5], also to re-authenticate [MQTT-4.12.1-1]
        raise ProtocolError(f"AUTH with method {auth.properties.authentication_method!r}, not "
                            f"{conn.auth_method!r}", rule="MQTT-4.12.0-5")
    if auth.reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
        if conn.auth_exchange is None:
            # 0x18 only answers our AUTH 0x18 [MQTT-4.12.0-3]
            raise ProtocolError("AUTH 0x18 but no authentication is in progress", rule="MQTT-4.12.0-3")
    elif auth.reason_code == ReasonCode.RE_AUTHENTICATE:
        if conn.state != CONNECTED or conn.auth_exchange is not None:
            # Re-authentication starts after CONNACK, and not in the middle of another (4.12.1)
            raise ProtocolError("AUTH 0x19 while an authentication is in progress")
        conn.auth_exchange = broker._auth_methods[conn.auth_method]()
    else:
        raise ProtocolError(f"a client sends AUTH 0x18 or 0x19, not 0x{auth.reason_code:02X}")
    authentication_step(broker, conn, auth.properties.authentication_data, now)


def authentication_step(broker: Broker, conn: Connection, data: bytes | None, now: float) -> None:
    """Give the client's Authentication Data to the exchange and answer what it says."""
    method = conn.auth_method
    try:
        step = conn.auth_exchange.step(data)
    except AuthenticationFailed as error:
        conn.auth_exchange = None
        if conn.state == AUTHENTICATING:
            # Failed: CONNACK 0x87 Not authorized, then close [MQTT-4.12.0-4]
            conn.pending_connect = None
            connect.refuse(broker, conn, 0, ReasonCode.NOT_AUTHORIZED, str(error), now)
        else:
            # Failed re-authentication: DISCONNECT 0x87, then close [MQTT-4.12.1-2]
            broker._log("notice", f"Client {conn.name} failed to re-authenticate: {error}")
            broker._send(conn, Disconnect(ReasonCode.NOT_AUTHORIZED, broker._reason(conn, str(error))))
            close(broker, conn, now, publish_will=True, reason="re-authentication failed")
        return
    properties = Properties(authentication_method=method, authentication_data=step.data)
    if not step.done:
        # More is needed: AUTH 0x18 [MQTT-4.12.0-2], with the same method [MQTT-4.12.0-5]
        broker._send(conn, Auth(ReasonCode.CONTINUE_AUTHENTICATION, properties))
        return
    conn.auth_exchange = None
    if conn.state == AUTHENTICATING:
        pending, assigned = conn.pending_connect
        conn.pending_connect = None
        conn.username = step.username
        connect.accept(broker, conn, pending, assigned, now, properties)
    elif step.username != conn.username:
        # Re-authentication may not change who the client is (a choice 4.12.1 allows)
        broker._send(conn, Disconnect(ReasonCode.NOT_AUTHORIZED,
                                      broker._reason(conn, "re-authentication as another user")))
        close(broker, conn, now, publish_will=True, reason="re-authentication as another user")
    else:
        broker._send(conn, Auth(ReasonCode.SUCCESS, properties))  # re-authentication done (4.12.1)

"""The life of one network connection as a state machine: which packets each state accepts, and where
each may lead. In the style of h11 (which does this for HTTP/1.1): the rules are data, in one place.

    AWAITING_CONNECT --CONNECT--> CONNECTED          CONNACK 0x00 went out
                     --CONNECT--> AUTHENTICATING     5.0: the CONNECT named an Authentication Method
                     --CONNECT--> CLOSED             refused (CONNACK with a failure code), or not MQTT
    AUTHENTICATING   --AUTH-----> AUTHENTICATING     one more step of the exchange (AUTH 0x18 both ways)
                     --AUTH-----> CONNECTED          the method accepted the client: CONNACK 0x00
                     --AUTH-----> CLOSED             the method refused: CONNACK 0x87
    CONNECTED        --PUBLISH, SUBSCRIBE ...------> CONNECTED
                     --AUTH-----> CONNECTED / CLOSED  5.0 re-authentication, succeeded or failed
    any              --DISCONNECT, error, timeout, network gone--> CLOSED

`PACKET_RULES` is that picture as a table: for each state, the packet types a client may send in it,
the states the handling of each may lead to, and the statement that allows it. A packet missing from
its state's row is a Protocol Error, for the reason in `REFUSED`. The broker (broker.py) asks
`check_packet` before it hands a packet to its handler, and checks afterwards that the handler left
the connection in one of the states the table allows.

Moves that are not caused by one packet (the CONNACK that accepts, the start of an authentication,
any close) are `Event`s; `next_state` is the one place that decides where they lead. The connection
table (connection.py, `Connections.transition`) is the only caller.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..protocol import (
    Auth,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Unsubscribe,
)


class ConnectionState(enum.Enum):
    AWAITING_CONNECT = "awaiting CONNECT"  # the socket is open; the first packet must be CONNECT
    AUTHENTICATING = "authenticating"      # 5.0 enhanced authentication, before CONNACK (4.12)
    CONNECTED = "connected"                # CONNACK 0x00 was sent: the session is attached
    CLOSED = "closed"                      # nothing more is read or sent

    # Looked up in tables for every packet: members are unique, so identity's hash (in C) will do,
    # instead of Enum's own (a Python function hashing the name)
    __hash__ = object.__hash__


AWAITING_CONNECT = ConnectionState.AWAITING_CONNECT
AUTHENTICATING = ConnectionState.AUTHENTICATING
CONNECTED = ConnectionState.CONNECTED
CLOSED = ConnectionState.CLOSED


class Event(enum.Enum):
    """What moves a connection besides a packet arriving."""

    AUTHENTICATION_STARTED = "authentication started"  # CONNECT named an Authentication Method
    ACCEPTED = "accepted"                              # CONNACK 0x00 went out
    CLOSED = "closed"                                  # the broker closes, or the network went away


@dataclass(frozen=True)
class PacketRule:
    leads_to: frozenset[ConnectionState]  # the states handling this packet may leave the connection in
    why: str                              # the statement that allows the packet here


def _rule(why: str, *leads_to: ConnectionState) -> PacketRule:
    return PacketRule(frozenset(leads_to), why)


_STAYS_CONNECTED = _rule("after CONNACK 0x00 a client may send any client-to-server packet but CONNECT",
                         CONNECTED)

PACKET_RULES: dict[ConnectionState, dict[type[Packet], PacketRule]] = {
    AWAITING_CONNECT: {
        Connect: _rule("the first packet from the client is CONNECT [MQTT-3.1.0-1]",
                       CONNECTED, AUTHENTICATING, CLOSED),
    },
    AUTHENTICATING: {
        Auth: _rule("during enhanced authentication the client answers with AUTH [MQTT-3.1.2-30], "
                    "[MQTT-4.12.0-2]", AUTHENTICATING, CONNECTED, CLOSED),
        Disconnect: _rule("the client may give up with DISCONNECT [MQTT-3.1.2-30]", CLOSED),
    },
    CONNECTED: {
        # a PUBLISH that memory_limit cannot hold is dropped and its publisher disconnected, as mosquitto does
        Publish: _rule("after CONNACK 0x00 a client may send any client-to-server packet but CONNECT; a PUBLISH "
                       "over memory_limit disconnects its publisher", CONNECTED, CLOSED),
        Puback: _STAYS_CONNECTED,
        Pubrec: _STAYS_CONNECTED,
        Pubrel: _STAYS_CONNECTED,
        Pubcomp: _STAYS_CONNECTED,
        Subscribe: _STAYS_CONNECTED,
        Unsubscribe: _STAYS_CONNECTED,
        Pingreq: _STAYS_CONNECTED,
        Auth: _rule("5.0 re-authentication: AUTH 0x19, then the exchange (4.12.1)", CONNECTED, CLOSED),
        # Protocol errors found while handling a packet close the connection too; they are raised,
        # not returned, so they do not appear here.
        Disconnect: _rule("DISCONNECT ends the connection [MQTT-3.14.4-1] (3.1.1), [MQTT-3.14.4-1] (5.0)",
                          CLOSED),
    },
    CLOSED: {},
}

#: Why a packet that is not in its state's row is refused: (explanation, statement id)
REFUSED: dict[ConnectionState, tuple[str, str | None]] = {
    AWAITING_CONNECT: ("the first packet on a connection must be CONNECT", "MQTT-3.1.0-1"),
    AUTHENTICATING: ("only AUTH or DISCONNECT may come before CONNACK during enhanced authentication",
                     "MQTT-3.1.2-30"),
    CONNECTED: ("a client may not send this packet", None),
    CLOSED: ("the connection is closed", None),
}

#: Where an event leads from each state; a pair missing here is a bug in the broker, not the client's.
TRANSITIONS: dict[tuple[ConnectionState, Event], ConnectionState] = {
    (AWAITING_CONNECT, Event.AUTHENTICATION_STARTED): AUTHENTICATING,
    (AWAITING_CONNECT, Event.ACCEPTED): CONNECTED,
    (AUTHENTICATING, Event.ACCEPTED): CONNECTED,
    (AWAITING_CONNECT, Event.CLOSED): CLOSED,
    (AUTHENTICATING, Event.CLOSED): CLOSED,
    (CONNECTED, Event.CLOSED): CLOSED,
}


def check_packet(state: ConnectionState, packet: Packet) -> PacketRule:
    """The rule that lets `packet` arrive in `state`; ProtocolError if none does."""
    rule = PACKET_RULES[state].get(type(packet))
    if rule is not None:
        return rule
    if state is not AWAITING_CONNECT and isinstance(packet, Connect):
        # A second CONNECT is a Protocol Error [MQTT-3.1.0-2]
        raise ProtocolError("a second CONNECT on one connection", rule="MQTT-3.1.0-2", kind="second CONNECT")
    why, statement = REFUSED[state]
    raise ProtocolError(f"{packet.name} while {state.value}: {why}", rule=statement)


def next_state(state: ConnectionState, event: Event) -> ConnectionState:
    """Where `event` leads from `state`. Closing a closed connection changes nothing."""
    if state is CLOSED and event is Event.CLOSED:
        return CLOSED
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise RuntimeError(f"no transition from {state.value!r} on {event.value!r}") from None

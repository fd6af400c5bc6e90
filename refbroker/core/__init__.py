"""The broker as a sans-IO state machine: bytes and time in, packets to send and connections to close out.

Entry points and dispatch:
    broker.py         the `Broker`: connection_made / data_received / connection_lost / tick
    states.py         the connection state machine: which packets each state accepts, where each leads
    context.py        the collaborators every handler receives

Handlers, one module per part of the protocol, each `on_<packet>(ctx, conn, packet, now)`:
    connect.py        CONNECT and AUTH before CONNACK: client id, authentication, takeover, session, CONNACK
    auth_exchange.py  the AUTH exchange's steps and results; re-authentication after CONNACK (5.0)
    publish_flow.py   inbound PUBLISH, PUBACK / PUBREC / PUBREL / PUBCOMP
    subscribe.py      SUBSCRIBE and UNSUBSCRIBE
    lifecycle.py      PINGREQ, DISCONNECT, protocol errors, closing, wills; timers that come due

Collaborators, each the one owner of its state:
    connection.py     Connection (what one connection negotiated) and Connections (the table, the states)
    sessions.py       Session and Sessions, and how long a session lives
    router.py         messages to matching sessions, delivery, the in-flight windows
    flow_control.py   which connections are read and why not: fairness, back-pressure, unread output
    qos.py            QoS 1/2 flows both ways, packet identifiers, in-flight window and queue
    outbox.py         everything sent: fitting packets to the client, Send and Close actions
    subscriptions.py  ordinary and shared subscriptions over a topic trie
    retained.py       retained messages
    wills.py          wills waiting for their Will Delay Interval
    timers.py         deadlines as typed events
    counters.py       totals for $SYS
    changes.py        what changed since persistence last saved (marks)

Persistence's half in the core:
    restore.py        a saved state put back into a fresh broker

Helpers:
    messages.py       Application Messages and their per-subscriber copies
    topic_aliases.py  topic aliases, set by clients and (optionally) by the broker (5.0)
    access.py         who may connect (password file) and what they may do (ACL file)
    auth_methods.py   the methods of the AUTH exchange (5.0 4.12): SCRAM-SHA-256
    sys_topics.py     the $SYS values, and publishing them
    sys_load.py       the $SYS load averages (1, 5, 15 minutes)
    settings.py       the settings, with mosquitto 2.0 defaults
    compat.py         mosquitto's choices where the specification allows several, one table per version
    packet_log.py     mosquitto-style per-packet log lines
    actions.py        Send, Close, PauseReading, ResumeReading, ProcessLater: what the host performs
"""

from .actions import Action, Close, PauseReading, ProcessLater, ResumeReading, Send
from .broker import Broker
from .settings import Listener, Settings, TlsOptions

__all__ = ["Action", "Broker", "Close", "Listener", "PauseReading", "ProcessLater", "ResumeReading", "Send",
           "Settings", "TlsOptions"]

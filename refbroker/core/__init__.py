"""The broker as a sans-IO state machine: bytes and time in, packets to send and connections to close out.

    broker.py        the `Broker`: entry points, shared state, dispatch to the handlers below, sending, $SYS
    connect.py       CONNECT: client id, authentication, takeover, session, CONNACK properties
    authentication.py AUTH: enhanced authentication and re-authentication steps (5.0)
    publish_flow.py  inbound PUBLISH, PUBACK / PUBREC / PUBREL / PUBCOMP
    routing.py       route a message to matching sessions, deliver, fill the in-flight window
    subscribe.py     SUBSCRIBE and UNSUBSCRIBE
    lifecycle.py     PINGREQ, DISCONNECT, protocol errors, closing, wills, keep alive and expiry timers
    connection.py    what one network connection negotiated
    sessions.py      session state and its expiry
    qos.py           QoS 1/2 flows both ways, packet identifiers, in-flight window and queue
    subscriptions.py ordinary and shared subscriptions over a topic trie
    retained.py      retained messages
    messages.py      Application Messages and their per-subscriber copies
    topic_aliases.py topic aliases, set by clients and (optionally) by the broker (5.0)
    timers.py        deadlines (keep alive, expiry, will delay, $SYS)
    sys_topics.py    the $SYS values
    sys_load.py      the $SYS load averages (1, 5, 15 minutes)
    auth.py          who may connect (password file) and what they may do (ACL file)
    enhanced_auth.py the methods of the AUTH exchange (5.0 4.12): SCRAM-SHA-256
    settings.py      the settings, with mosquitto 2.0 defaults
    packet_log.py    mosquitto-style per-packet log lines
    actions.py       Send and Close, what the host performs
"""

from .actions import Action, Close, Send
from .broker import Broker
from .settings import Listener, Settings, TlsOptions

__all__ = ["Action", "Broker", "Close", "Listener", "Send", "Settings", "TlsOptions"]

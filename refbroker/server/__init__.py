"""Network front ends that feed bytes to the sans-IO core (refbroker.core) and carry out its actions.

Nothing MQTT-specific lives here: a server only moves bytes, keeps one timer, and closes sockets.

    tcp.py        BrokerServer: the listeners (TCP, TLS, WebSocket, WebSocket over TLS), one timer
    tls.py        ssl.SSLContext from a listener's TLS keys, TlsLink (TLS on memory BIOs), certificate identities
    websocket.py  MQTT over WebSocket with the `websockets` library's sans-IO protocol
    loop.py       the event loop: uvloop's when installed, else asyncio's
"""

from .loop import loop_kind, new_event_loop
from .tcp import BrokerServer

__all__ = ["BrokerServer", "loop_kind", "new_event_loop"]

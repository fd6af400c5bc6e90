"""Network front ends that feed bytes to the sans-IO core (refbroker.core) and carry out its actions.

Nothing MQTT-specific lives here: a server only moves bytes, keeps one timer, and closes sockets.
"""

from .tcp import BrokerServer

__all__ = ["BrokerServer"]

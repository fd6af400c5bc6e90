"""Topic aliases a client sets on its PUBLISHes (5.0 3.3.2.3.4).

A client may replace a topic name by a small integer: a PUBLISH with both a topic and an alias
sets the mapping, a later one with an empty topic and the alias uses it. Mappings belong to one
network connection and are never carried to the next [MQTT-3.3.2-7]. refbroker, like mosquitto
2.0, never assigns aliases to its own PUBLISHes to clients (that came with mosquitto 2.1).
"""

from __future__ import annotations

from ..protocol import ProtocolError, ReasonCode


class InboundTopicAliases:
    def __init__(self, maximum: int) -> None:
        self.maximum = maximum  # the Topic Alias Maximum we sent in CONNACK
        self._topics: dict[int, str] = {}

    def resolve(self, topic: str, alias: int | None) -> str:
        """The topic name a PUBLISH really goes to, updating the mapping if it sets one."""
        if alias is None:
            return topic
        if alias == 0 or alias > self.maximum:
            # [MQTT-3.3.2-8] never 0; [MQTT-3.3.2-9] at most our Topic Alias Maximum: DISCONNECT 0x94
            raise ProtocolError(f"topic alias {alias} is outside 1..{self.maximum}", rule="MQTT-3.3.2-9",
                                reason_code=ReasonCode.TOPIC_ALIAS_INVALID)
        if topic:
            self._topics[alias] = topic
            return topic
        known = self._topics.get(alias)
        if known is None:
            # An empty topic name with an alias that has no mapping is a Protocol Error (3.3.4)
            raise ProtocolError(f"topic alias {alias} has no topic mapped to it")
        return known

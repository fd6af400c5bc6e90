"""Topic aliases, both ways (5.0 3.3.2.3.4).

A sender may replace a topic name by a small integer: a PUBLISH with both a topic and an alias
sets the mapping, a later one with an empty topic and the alias uses it. Mappings belong to one
network connection and one direction, and are never carried to the next connection [MQTT-3.3.2-7].

`InboundTopicAliases` resolves the aliases a client sets. `OutboundTopicAliases` gives aliases to
the PUBLISHes the broker sends a client: only with `assign_topic_aliases true` (mosquitto 2.0 never
does, so it is off by default), and only up to the Topic Alias Maximum the client announced.
Policy: first come, first served: the first topics get aliases 1, 2, 3 ..., later ones go out in full.
"""

from __future__ import annotations

import dataclasses

from ..protocol import Properties, ProtocolError, Publish, ReasonCode


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


class OutboundTopicAliases:
    def __init__(self, maximum: int) -> None:
        # At most the client's Topic Alias Maximum [MQTT-3.1.2-26], [MQTT-3.3.2-11]; with 0 (or none
        # announced) this object is never created: no aliases at all [MQTT-3.1.2-27]
        self.maximum = maximum
        self._aliases: dict[str, int] = {}

    def apply(self, publish: Publish) -> tuple[Publish, bool]:
        """(the PUBLISH to send, whether it sets a new mapping)."""
        alias = self._aliases.get(publish.topic)
        if alias is not None:  # known: empty topic name + alias
            return dataclasses.replace(publish, topic="", properties=_with_alias(publish, alias)), False
        if len(self._aliases) >= self.maximum:
            return publish, False
        alias = self._aliases[publish.topic] = len(self._aliases) + 1
        return dataclasses.replace(publish, properties=_with_alias(publish, alias)), True  # topic + alias

    def forget(self, topic: str) -> None:
        """The PUBLISH that would have set this mapping was never sent (too large for the client)."""
        if self._aliases.get(topic) == len(self._aliases):
            del self._aliases[topic]


def _with_alias(publish: Publish, alias: int) -> Properties:
    properties = publish.properties.copy()
    properties.topic_alias = alias
    return properties

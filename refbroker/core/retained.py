"""The retained message store: the last retained message of each topic (3.3.1.3).

Retained messages are not session state: ending a session never removes them [MQTT-3.1.2.7] (3.1.1).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..protocol.topics import MULTI_LEVEL_WILDCARD, SINGLE_LEVEL_WILDCARD, topic_matcher
from .changes import Changes
from .messages import Message


class RetainedStore:
    """Every change is marked in `changes` (changes.py), for persistence."""

    def __init__(self, changes: Changes | None = None) -> None:
        self._messages: dict[str, Message] = {}
        self._changes = changes if changes is not None else Changes()
        self.payload_bytes = 0  # of the messages kept (for memory_limit)

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self._messages.values()))

    def store(self, message: Message) -> None:
        """Keep `message` for its topic, replacing the previous one [MQTT-3.3.1-5].

        An empty payload removes the topic's retained message and is never stored itself:
        [MQTT-3.3.1-10/11] (3.1.1), [MQTT-3.3.1-6/7] (5.0).
        """
        previous = self._messages.pop(message.topic, None)
        if previous is not None:
            self.payload_bytes -= len(previous.payload)
        if message.payload:
            self._messages[message.topic] = message
            self.payload_bytes += len(message.payload)
        elif previous is None:
            return
        self._changes.retained(message.topic)

    def get(self, topic: str) -> Message | None:
        """The retained message of exactly this topic (expired or not), or None."""
        return self._messages.get(topic)

    def matching(self, topic_filter: str, now: float) -> Iterator[Message]:
        """The unexpired retained messages whose topic matches `topic_filter` [MQTT-3.3.1-6] (3.1.1)."""
        if SINGLE_LEVEL_WILDCARD not in topic_filter and MULTI_LEVEL_WILDCARD not in topic_filter:
            candidates = [self._messages[topic_filter]] if topic_filter in self._messages else []
        else:
            matches = topic_matcher(topic_filter)
            candidates = [m for topic, m in self._messages.items() if matches(topic)]
        for message in candidates:
            if message.is_expired(now):  # [MQTT-3.3.2-5]: an expired message is not delivered
                del self._messages[message.topic]
                self.payload_bytes -= len(message.payload)
                self._changes.retained(message.topic)
            else:
                yield message

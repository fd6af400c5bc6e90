"""Core objects to table rows and back: messages (with their properties as JSON), subscription options.

Times: the core counts in its own clock (the event loop's monotonic time); the file holds unix
times, so that a restart (a new clock) and the downtime are counted right. `offset` is
wall time - core time at the moment of conversion.
"""

from __future__ import annotations

import json

from ..core.messages import Message
from ..core.subscriptions import SubscriptionOptions
from ..protocol import Properties

_BYTES_PROPERTIES = ("correlation_data", "authentication_data")


def properties_to_json(properties: Properties) -> str:
    """The properties that are present, by name; bytes as {"hex": ...}, user properties as [[k, v], ...]."""
    values = {}
    for name, value in properties.items():
        if name in _BYTES_PROPERTIES:
            value = {"hex": value.hex()}
        elif name == "user_properties":
            value = [list(pair) for pair in value]
        values[name] = value
    return json.dumps(values, sort_keys=True)


def properties_from_json(text: str) -> Properties:
    properties = Properties()
    for name, value in json.loads(text).items():
        if name in _BYTES_PROPERTIES:
            value = bytes.fromhex(value["hex"])
        elif name == "user_properties":
            value = [tuple(pair) for pair in value]
        setattr(properties, name, value)
    return properties


def message_row(message: Message, offset: float) -> tuple:
    """(topic, payload, qos, retain, properties, expires_at, sender) for `messages`."""
    expires_at = None if message.expires_at is None else message.expires_at + offset
    return (message.topic, message.payload, message.qos, int(message.retain), properties_to_json(message.properties),
            expires_at, message.sender)


def message_from_row(row, offset: float) -> Message:
    topic, payload, qos, retain, properties, expires_at, sender = row
    return Message(topic, bytes(payload), qos, bool(retain), properties_from_json(properties),
                   None if expires_at is None else expires_at - offset, sender)


def options_row(options: SubscriptionOptions) -> tuple:
    """(qos, no_local, retain_as_published, retain_handling, identifier) for `subscriptions`."""
    return (options.qos, int(options.no_local), int(options.retain_as_published), options.retain_handling,
            options.identifier)


def options_from_row(topic_filter: str, row) -> SubscriptionOptions:
    qos, no_local, retain_as_published, retain_handling, identifier = row
    share_name = topic_filter.split("/", 2)[1] if topic_filter.startswith("$share/") else None
    return SubscriptionOptions(qos, bool(no_local), bool(retain_as_published), retain_handling, identifier, share_name)

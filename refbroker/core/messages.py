"""Application Messages as the broker stores them between receiving and delivering.

A `Message` is what a publisher handed over: topic, payload, QoS, retain flag and the PUBLISH
properties that travel with it to every subscriber (5.0 3.3.2.3). A `Delivery` is one copy on its
way to one subscriber: the message plus what that subscription decided (the granted QoS, the RETAIN
flag it goes out with, the Subscription Identifiers it carries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..protocol import Properties, Publish, Will

# The properties of every 3.1/3.1.1 message: none. One object shared by all of them (each would cost an
# allocation and some 200 bytes, retained ones for as long as they are kept); nothing changes a
# message's properties in place: they are copied first (Delivery.to_publish, lifecycle's wills).
NO_PROPERTIES = Properties()


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties = field(default_factory=Properties)  # forwarded as is (no alias, no ids, no expiry)
    expires_at: float | None = None  # absolute time from the Message Expiry Interval, None: never
    sender: str | None = None        # client id of the publisher, for No Local [MQTT-3.8.3-3]

    @classmethod
    def from_publish(cls, publish: Publish, topic: str, sender: str | None, now: float,
                     with_properties: bool = True) -> Message:
        """The message a PUBLISH carries; `with_properties` False for 3.1/3.1.1, which have none."""
        if not with_properties:
            return cls(topic, publish.payload, publish.qos, publish.retain, NO_PROPERTIES, None, sender)
        received = publish.properties
        # Forwarded unchanged: [MQTT-3.3.2-4] payload format, [MQTT-3.3.2-15] response topic,
        # [MQTT-3.3.2-16] correlation data, [MQTT-3.3.2-17/18] user properties in order,
        # [MQTT-3.3.2-20] content type. Topic Alias and Subscription Identifiers are not.
        properties = Properties(payload_format_indicator=received.payload_format_indicator,
                                content_type=received.content_type, response_topic=received.response_topic,
                                correlation_data=received.correlation_data,
                                user_properties=list(received.user_properties))
        expiry = received.message_expiry_interval
        return cls(topic, publish.payload, publish.qos, publish.retain, properties,
                   None if expiry is None else now + expiry, sender)

    @classmethod
    def from_will(cls, will: Will, client_id: str) -> Message:
        """The Will Message of a CONNECT. Its properties are forwarded like a PUBLISH's, user properties
        in their order [MQTT-3.1.3-10] (5.0); the Message Expiry Interval is kept in `properties` until
        the will is published, because it counts from then."""
        received = will.properties
        properties = Properties(payload_format_indicator=received.payload_format_indicator,
                                content_type=received.content_type, response_topic=received.response_topic,
                                correlation_data=received.correlation_data,
                                user_properties=list(received.user_properties),
                                message_expiry_interval=received.message_expiry_interval)
        return cls(will.topic, will.payload, will.qos, will.retain, properties, None, client_id)

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def remaining_expiry(self, now: float) -> int | None:
        """The Message Expiry Interval to send on: what is left of it [MQTT-3.3.2-6]."""
        if self.expires_at is None:
            return None
        return max(1, math.ceil(self.expires_at - now - 1e-9))


@dataclass(slots=True)
class Delivery:
    message: Message
    qos: int                      # min(message QoS, granted QoS) [MQTT-3.8.4-6] (3.1.1), [MQTT-3.8.4-8] (5.0)
    retain: bool                  # the RETAIN flag this copy goes out with
    subscription_ids: tuple[int, ...] = ()

    def to_publish(self, packet_id: int | None, now: float, dup: bool = False) -> Publish:
        message = self.message
        properties = message.properties
        if message.expires_at is not None or self.subscription_ids:
            properties = properties.copy()
            properties.message_expiry_interval = message.remaining_expiry(now)
            properties.subscription_identifiers = list(self.subscription_ids)
        return Publish(message.topic, message.payload, self.qos, self.retain, dup, packet_id, properties)

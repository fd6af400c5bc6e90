"""SUBSCRIBE and UNSUBSCRIBE: the session's subscriptions, SUBACK / UNSUBACK, and the retained
messages a new subscription receives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..protocol import (
    MQTT_5,
    InvalidTopicFilter,
    Properties,
    ProtocolError,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    is_shared_subscription,
    validate_topic_filter,
)
from ..protocol.reason_codes import SUBACK_FAILURE_V3
from .auth import may_receive, may_subscribe
from .connection import Connection
from .messages import Delivery
from .routing import deliver
from .subscriptions import SubscriptionOptions

if TYPE_CHECKING:
    from .broker import Broker


def on_subscribe(broker: Broker, conn: Connection, subscribe: Subscribe, now: float) -> None:
    session = conn.session
    v5 = conn.version == MQTT_5
    identifier = subscribe.properties.subscription_identifiers[0] if subscribe.properties.subscription_identifiers \
        else None
    codes: list[int] = []
    retained_to_send: list[tuple[str, SubscriptionOptions]] = []
    for subscription in subscribe.subscriptions:
        topic_filter = subscription.topic_filter
        try:
            # Like mosquitto, "$share/" is a shared subscription for every protocol version
            validate_topic_filter(topic_filter)
        except InvalidTopicFilter as error:
            # A refused filter: 0x80 [MQTT-3.9.3-2] (3.1.1), 0x8F Topic Filter invalid (5.0).
            # (mosquitto drops the connection instead: deviation 23.)
            broker._log("notice", f"Refused subscription {topic_filter!r} of {conn.name}: {error}")
            codes.append(ReasonCode.TOPIC_FILTER_INVALID if v5 else SUBACK_FAILURE_V3)
            continue
        shared = is_shared_subscription(topic_filter)
        if shared and subscription.no_local:
            raise ProtocolError("No Local on a shared subscription", rule="MQTT-3.8.3-4")
        inner_filter = topic_filter.split("/", 2)[2] if shared else topic_filter
        if not may_subscribe(broker.settings, conn.client_id, conn.username, inner_filter):
            # The ACL lets this client read nothing the filter matches: 0x80 [MQTT-3.9.3-2] (3.1.1),
            # 0x87 Not authorized (5.0). (mosquitto 2.0.11 grants it and filters every message.)
            broker._log("notice", f"Denied subscription {topic_filter!r} of {conn.name}.")
            codes.append(ReasonCode.NOT_AUTHORIZED if v5 else SUBACK_FAILURE_V3)
            continue
        granted = min(subscription.qos, broker.settings.max_qos)  # [MQTT-3.2.2-10] (5.0)
        options = SubscriptionOptions(granted, subscription.no_local, subscription.retain_as_published,
                                      subscription.retain_handling, identifier,
                                      topic_filter.split("/", 2)[1] if shared else None)
        # The same filter again replaces the subscription [MQTT-3.8.4-3] (both versions)
        is_new = topic_filter not in session.subscriptions
        session.subscriptions[topic_filter] = options
        broker.subscriptions.add(session.client_id, topic_filter, options)
        codes.append(granted)  # [MQTT-3.8.4-5] (3.1.1), [MQTT-3.8.4-7] (5.0)
        # Retained messages: Retain Handling 0 always, 1 only for a new subscription, 2 never
        # [MQTT-3.3.1-9/10/11] (5.0); none for shared subscriptions (as mosquitto >= 2.0.13)
        if not shared and (options.retain_handling == 0 or (options.retain_handling == 1 and is_new)):
            retained_to_send.append((topic_filter, options))
    # One SUBACK, same packet id, one code per filter in order [MQTT-3.8.4-1/2/4], [MQTT-3.9.3-1]
    failed = [code for code in codes if code >= 0x80]
    why = "not authorised" if ReasonCode.NOT_AUTHORIZED in failed else "invalid topic filter"
    broker._send(conn, Suback(subscribe.packet_id, codes, broker._reason(conn, why) if failed else Properties()))
    for topic_filter, options in retained_to_send:
        ids = (options.identifier,) if options.identifier is not None else ()
        for message in broker.retained.matching(topic_filter, now):
            if not may_receive(broker.settings, conn.client_id, conn.username, message.topic):
                continue
            # Sent because of a new subscription: RETAIN 1 [MQTT-3.3.1-8] (3.1.1)
            deliver(broker, session, Delivery(message, min(message.qos, options.qos), True, ids), now)


def on_unsubscribe(broker: Broker, conn: Connection, unsubscribe: Unsubscribe, now: float) -> None:
    session = conn.session
    codes = []
    for topic_filter in unsubscribe.topic_filters:
        # Exact, character by character comparison [MQTT-3.10.4-1]
        if session.subscriptions.pop(topic_filter, None) is not None:
            broker.subscriptions.remove(session.client_id, topic_filter)
            codes.append(ReasonCode.SUCCESS)
        else:
            codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
    # Always an UNSUBACK with the same id [MQTT-3.10.4-4/5] (3.1.1), [MQTT-3.10.4-4/5] (5.0)
    broker._send(conn, Unsuback(unsubscribe.packet_id, codes if conn.version == MQTT_5 else []))

"""SUBSCRIBE and UNSUBSCRIBE: the session's subscriptions, SUBACK / UNSUBACK, and the retained
messages a new subscription receives.

On a listener with a `mount_point` every filter gets the mount point in front (inside a shared
subscription, in front of the inner filter), so such a client only ever sees its own part of the
topic tree. mosquitto's log types `subscribe` and `unsubscribe` get one line per filter.

Who may subscribe to what is the ACL's (access.py). One more rule is refbroker's own, for the test
server (it is test.mosquitto.org's, which mosquitto.conf cannot say): with `root_wildcard_users` a
subscription to exactly "#" (every topic) is refused unless the client's user is one of them, and with
`root_wildcard_lifetime` such a subscription is removed after that many seconds (`on_subscription_due`).
"""

from __future__ import annotations

from ..protocol import (
    MQTT_3_1,
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
from ..protocol.reason_codes import SUBACK_FAILURE_V3, is_failure
from .access import may_receive, may_subscribe
from .connection import Connection
from .context import Context
from .messages import Delivery
from .subscriptions import SubscriptionOptions
from .timers import SubscriptionDue


def on_subscribe(ctx: Context, conn: Connection, subscribe: Subscribe, now: float) -> None:
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
            validate_topic_filter(topic_filter, version=conn.version)  # errors cite the client's version's ids
            depth_limit = ctx.settings.compat.topic_depth_limit
            if depth_limit and topic_filter.count("/") > depth_limit:
                # mosquitto's limit, not the specification's (compat.py)
                raise InvalidTopicFilter(f"topic filter with more than {depth_limit} '/'", kind="topic filter too deep")
        except InvalidTopicFilter as error:
            if conn.version == MQTT_3_1 or ctx.settings.compat.invalid_filter_closes:
                # A filter that breaks the topic rules (4.7.1, 4.8.2) is a protocol violation: the
                # connection is closed [MQTT-4.8.0-1] (3.1.1), [MQTT-4.13.1-1] (5.0), as mosquitto
                # does (compat.py); MQTT 3.1 has no SUBACK failure code at all (granted QoS 0-2 only).
                raise
            # A refused filter: 0x80 [MQTT-3.9.3-2] (3.1.1), 0x8F Topic Filter invalid (5.0).
            ctx.log("notice", f"Refused subscription {topic_filter!r} of {conn.name}: {error}")
            codes.append(ReasonCode.TOPIC_FILTER_INVALID if v5 else SUBACK_FAILURE_V3)
            continue
        shared = is_shared_subscription(topic_filter)
        if shared and subscription.no_local:
            raise ProtocolError("No Local on a shared subscription", rule="MQTT-3.8.3-4")
        topic_filter = _mounted(conn.mount_point, topic_filter, shared)
        inner_filter = topic_filter.split("/", 2)[2] if shared else topic_filter
        if not may_subscribe(conn.security, conn.client_id, conn.username, inner_filter):
            # The ACL lets this client read nothing the filter matches: 0x80 [MQTT-3.9.3-2] (3.1.1),
            # 0x87 Not authorized (5.0). (mosquitto 2.0.11 grants it and filters every message.)
            ctx.log("notice", f"Denied subscription {topic_filter!r} of {conn.name}.")
            if conn.version == MQTT_3_1:
                # No failure code in 3.1: grant it without subscribing, so nothing reaches the client
                codes.append(min(subscription.qos, ctx.settings.max_qos))
                continue
            codes.append(ReasonCode.NOT_AUTHORIZED if v5 else SUBACK_FAILURE_V3)
            continue
        root_users = ctx.settings.root_wildcard_users
        if inner_filter == "#" and root_users is not None and conn.username not in root_users:
            # The test server's rule: only these users may subscribe to every topic; 0x80 [MQTT-3.9.3-2]
            # (3.1.1), 0x87 Not authorized (5.0)
            ctx.log("notice", f"Denied subscription {topic_filter!r} of {conn.name}: only "
                              f"{', '.join(sorted(root_users))} may subscribe to '#'.")
            codes.append(ReasonCode.NOT_AUTHORIZED if v5 else SUBACK_FAILURE_V3)
            continue
        granted = min(subscription.qos, ctx.settings.max_qos)  # [MQTT-3.2.2-10] (5.0)
        options = SubscriptionOptions(granted, subscription.no_local, subscription.retain_as_published,
                                      subscription.retain_handling, identifier,
                                      topic_filter.split("/", 2)[1] if shared else None)
        # The same filter again replaces the subscription [MQTT-3.8.4-3] (both versions)
        is_new = session.subscribe(topic_filter, options)
        ctx.subscriptions.add(session.client_id, topic_filter, options)
        ctx.sessions.touch(session.client_id, counts=True)  # for persistence
        ctx.log("subscribe", f"{conn.client_id} {granted} {subscription.topic_filter}")
        if inner_filter == "#" and root_users is not None and ctx.settings.root_wildcard_lifetime:
            ctx.timers.schedule(now + ctx.settings.root_wildcard_lifetime,
                                SubscriptionDue(session.client_id, topic_filter, options))
        codes.append(granted)  # [MQTT-3.8.4-5] (3.1.1), [MQTT-3.8.4-7] (5.0)
        # Retained messages: Retain Handling 0 always, 1 only for a new subscription, 2 never
        # [MQTT-3.3.1-9/10/11] (5.0); none for shared subscriptions (as mosquitto >= 2.0.13)
        if not shared and (options.retain_handling == 0 or (options.retain_handling == 1 and is_new)):
            retained_to_send.append((topic_filter, options))
    # One SUBACK, same packet id, one code per filter in order [MQTT-3.8.4-1/2/4], [MQTT-3.9.3-1]
    failed = [code for code in codes if is_failure(code)]
    why = "not authorised" if ReasonCode.NOT_AUTHORIZED in failed else "invalid topic filter"
    ctx.outbox.send(conn, Suback(subscribe.packet_id, codes, ctx.outbox.failure_properties(conn, why) if failed else Properties()))
    for topic_filter, options in retained_to_send:
        ids = (options.identifier,) if options.identifier is not None else ()
        for message in ctx.retained.matching(topic_filter, now):
            if not may_receive(conn.security, conn.client_id, conn.username, message.topic):
                continue
            qos = options.qos if ctx.settings.upgrade_outgoing_qos else min(message.qos, options.qos)
            # Sent because of a new subscription: RETAIN 1 [MQTT-3.3.1-8] (3.1.1)
            ctx.router.deliver(session, Delivery(message, qos, True, ids), now)


def on_unsubscribe(ctx: Context, conn: Connection, unsubscribe: Unsubscribe, now: float) -> None:
    session = conn.session
    codes = []
    for sent_filter in unsubscribe.topic_filters:
        topic_filter = _mounted(conn.mount_point, sent_filter, is_shared_subscription(sent_filter))
        ctx.log("unsubscribe", f"{conn.client_id} {sent_filter}")
        # Exact, character by character comparison [MQTT-3.10.4-1]
        if session.unsubscribe(topic_filter) is not None:
            ctx.subscriptions.remove(session.client_id, topic_filter)
            ctx.sessions.touch(session.client_id, counts=True)  # for persistence
            codes.append(ReasonCode.SUCCESS)
        else:
            codes.append(ReasonCode.NO_SUBSCRIPTION_EXISTED)
    # Always an UNSUBACK with the same id [MQTT-3.10.4-4/5] (3.1.1), [MQTT-3.10.4-4/5] (5.0)
    ctx.outbox.send(conn, Unsuback(unsubscribe.packet_id, codes if conn.version == MQTT_5 else []))


def on_subscription_due(ctx: Context, event: SubscriptionDue, now: float) -> None:
    """A subscription to "#" has lived root_wildcard_lifetime: removed, as if the client had unsubscribed
    (MQTT has no way to tell the client)."""
    session = ctx.sessions.get(event.client_id)
    if session is None or session.subscriptions.get(event.topic_filter) is not event.options:
        return  # the session ended, or the client unsubscribed or subscribed again since
    session.unsubscribe(event.topic_filter)
    ctx.subscriptions.remove(session.client_id, event.topic_filter)
    ctx.sessions.touch(session.client_id, counts=True)  # for persistence
    ctx.log("notice", f"Removed subscription {event.topic_filter!r} of {event.client_id}: "
                      f"its {ctx.settings.root_wildcard_lifetime} s are over.")


def _mounted(mount_point: str, topic_filter: str, shared: bool) -> str:
    """The filter as stored: the listener's mount_point in front of it (of its inner filter if shared)."""
    if not mount_point:
        return topic_filter
    if shared:
        _, share_name, inner = topic_filter.split("/", 2)
        return f"$share/{share_name}/{mount_point}{inner}"
    return mount_point + topic_filter

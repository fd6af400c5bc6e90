"""$SYS topics: the broker describes itself, like mosquitto(8) lists, every `sys_interval` seconds.

They are published as retained messages, so a new subscriber sees the latest values at once.
A filter starting with a wildcard never matches them [MQTT-4.7.2-1]: "#" does not see "$SYS/...".
`publish_sys` gathers the values from the broker's collaborators and publishes them; the load averages
(load/...) come from sys_load.py. As in mosquitto 2.0.11, broker/version is published once, at the
first update (it never changes); everything else at every update.

heap/current and heap/maximum: mosquitto counts the bytes its own allocator handed out; a Python
program has no such count of its own, so refbroker publishes the memory the process really uses
(resident set size now, and its peak), which the host measures (`Context.memory_usage`, read from
the operating system; the core does no I/O). Without a host that measures, they are not published.
"""

from __future__ import annotations

from .context import Context
from .counters import Counters
from .messages import Message
from .timers import SysDue


def sys_values(*, version: str | None, uptime: float, connected: int, disconnected: int, maximum: int,
               subscriptions: int, retained: int, counters: Counters, stored: tuple[int, int] = (0, 0),
               load: dict[str, str] | None = None, shared_subscriptions: int = 0,
               memory: tuple[int, int] | None = None) -> dict[str, str]:
    """topic -> payload of the $SYS messages to publish now (`version` None: not this time).
    `subscriptions` counts ordinary subscriptions only; shared ones are counted apart, as mosquitto does."""
    base = "$SYS/broker/"
    values = {
        "uptime": f"{int(uptime)} seconds",
        "clients/connected": connected,
        "clients/active": connected,
        "clients/disconnected": disconnected,
        "clients/inactive": disconnected,
        "clients/total": connected + disconnected,
        "clients/maximum": maximum,
        "clients/expired": counters.sessions_expired,
        "messages/received": counters.messages_received,
        "messages/sent": counters.messages_sent,
        "publish/messages/received": counters.publish_received,
        "publish/messages/sent": counters.publish_sent,
        "publish/messages/dropped": counters.publish_dropped,
        "publish/bytes/received": counters.publish_bytes_received,
        "publish/bytes/sent": counters.publish_bytes_sent,
        "bytes/received": counters.bytes_received,
        "bytes/sent": counters.bytes_sent,
        "subscriptions/count": subscriptions,
        "shared_subscriptions/count": shared_subscriptions,
        "retained messages/count": retained,
        # Messages the broker holds (retained, queued, in flight; each once) and their payload bytes
        "store/messages/count": stored[0],
        "store/messages/bytes": stored[1],
        "messages/stored": stored[0],
        **(load or {}),
    }
    if version is not None:
        values = {"version": version, **values}
    if memory is not None:
        values["heap/current"], values["heap/maximum"] = memory
    return {base + key: str(value) for key, value in values.items()}


def stored_messages(retained, sessions) -> tuple[int, int]:
    """(count, payload bytes) of the distinct messages held: retained ones and those in sessions."""
    seen: dict[int, int] = {}
    for message in retained:
        seen[id(message)] = len(message.payload)
    for session in sessions:
        outgoing = session.outgoing
        for delivery in [flight.delivery for flight in outgoing.inflight.values()] + list(outgoing.queue):
            seen[id(delivery.message)] = len(delivery.message.payload)
    return len(seen), sum(seen.values())


def publish_sys(ctx: Context, now: float, *, first: bool = True) -> None:
    """Publish every $SYS value now, as retained QoS 0 messages (broker/version only if `first`)."""
    ctx.load.update(now, ctx.counters)
    connected = ctx.connections.connected
    shared = ctx.subscriptions.shared_count
    values = sys_values(version=ctx.version if first else None, uptime=now - ctx.started_at, connected=connected,
                        disconnected=len(ctx.sessions) - sum(1 for s in ctx.sessions
                                                             if ctx.connections.is_online(s.client_id)),
                        maximum=ctx.connections.connected_max, subscriptions=len(ctx.subscriptions) - shared,
                        shared_subscriptions=shared, retained=len(ctx.retained), counters=ctx.counters,
                        stored=stored_messages(ctx.retained, ctx.sessions), load=ctx.load.values(),
                        memory=ctx.memory_usage() if ctx.memory_usage is not None else None)
    for topic, payload in values.items():
        ctx.router.publish(Message(topic, payload.encode(), 0, True), now)


def on_sys_due(ctx: Context, event: SysDue, now: float) -> None:
    publish_sys(ctx, now, first=event.first)
    ctx.timers.schedule(now + ctx.settings.sys_interval, SysDue())

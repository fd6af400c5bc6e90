"""Putting saved state back into a fresh broker: the core's half of persistence.

The host reads what it saved (refbroker/persistence) and hands it over as a `SavedState` of the
core's own objects: sessions with their subscriptions, in-flight and queued messages and QoS 2
receive state, retained messages, and wills waiting for their Will Delay Interval. `restore` puts each
into the collaborator that owns it and schedules what time will bring: the expiry of the sessions
(all offline now) and the delayed wills. Times are the core's clock (`now`), already converted by
the host from the wall-clock times on disk, so a session whose expiry passed while the broker was
down ends at the first `tick`, and a will whose delay passed is published then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .context import Context
from .messages import Message
from .sessions import Session
from .timers import SessionExpiryDue, WillDue


@dataclass
class DelayedWill:
    client_id: str
    due: float          # core time
    message: Message


@dataclass
class SavedState:
    sessions: list[Session] = field(default_factory=list)   # offline; expires_at in core time (None: never)
    retained: list[Message] = field(default_factory=list)
    wills: list[DelayedWill] = field(default_factory=list)


def restore(ctx: Context, state: SavedState, now: float) -> None:
    """Install `state` in an empty broker. Nothing is marked as changed: it is what is on disk."""
    for message in state.retained:
        ctx.retained.store(message)
    for session in state.sessions:
        ctx.sessions.add(session)
        for topic_filter, options in session.subscriptions.items():
            ctx.subscriptions.add(session.client_id, topic_filter, options)
        if session.expires_at is not None:
            ctx.timers.schedule(max(now, session.expires_at), SessionExpiryDue(session.client_id))
    for will in state.wills:
        ctx.wills.delay(will.client_id, will.message, will.due)
        ctx.timers.schedule(max(now, will.due), WillDue(will.client_id))
    ctx.changes.take()

"""Reading the broker's state from the database at start, and writing what changed since.

`Store.load` reads every table into the core's own objects (a `SavedState`, which the broker
restores) and remembers what the file holds. `Store.save` then looks only at the parts the core
marked as changed (core/changes.py), compares each with what the file holds, and writes the
difference in one transaction: a QoS 1 message queued for an offline client is one INSERT into
`outgoing`, its PUBACK one DELETE, whatever the length of the queue.

What the file holds is remembered by object identity: the Message objects of the core are shared
by all the copies of one message (retained, queued for many clients), and each is one row of
`messages`, counted by the rows that refer to it and deleted with the last of them.

Not saved: sessions that end with their connection (Session Expiry Interval 0, Clean Session 1),
and $SYS retained messages (the broker publishes them anew).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from ..core.changes import ChangeMarks
from ..core.messages import Delivery, Message
from ..core.restore import DelayedWill, SavedState
from ..core.sessions import Session
from .rows import message_from_row, message_row, options_from_row, options_row

QUEUED, SENT, RELEASED = "queued", "sent", "released"


@dataclass
class _Copy:
    """One row of `outgoing`, as the file holds it."""

    delivery: Delivery
    position: int
    state: str
    packet_id: int | None


class Store:
    def __init__(self, connection: sqlite3.Connection, written_by: str):
        self.connection = connection
        self.written_by = written_by
        # What the file holds (see the module docstring)
        self._messages: dict[int, list] = {}          # id(Message) -> [row id, Message, references]
        self._retained: dict[str, Message] = {}
        self._sessions: dict[str, tuple] = {}          # client id -> session row (core times)
        self._subscriptions: dict[str, dict[str, tuple]] = {}
        self._outgoing: dict[str, dict[int, _Copy]] = {}  # client id -> id(Delivery) -> row
        self._next_position: dict[str, int] = {}
        self._incoming: dict[str, set[int]] = {}
        self._wills: dict[str, tuple[float, Message]] = {}
        self._next_message_id = 1
        self._writes: list[tuple[str, tuple]] = []     # the statements of the save being prepared
        self._unreferenced: list[Message] = []
        self._rewrite = False                          # a save failed: write everything next time
        self.saves = 0                                 # transactions written

    # ------------------------------------------------------------------------------------------- load

    def load(self, offset: float, persistent_client_expiration: float | None) -> tuple[SavedState, set[str]]:
        """Everything in the file, in core time (`offset` = wall - core now). Also returns the client
        ids of sessions that were online when the file was saved: they are offline now, counted
        from that save, and their rows must be written again (`save` with them marked)."""
        db = self.connection
        saved_at = db.execute("SELECT saved_at FROM broker").fetchone()[0]
        messages: dict[int, Message] = {}
        for row_id, *row in db.execute("SELECT id, topic, payload, qos, retain, properties, expires_at, sender "
                                       "FROM messages"):
            message = messages[row_id] = message_from_row(row, offset)
            self._messages[id(message)] = [row_id, message, 0]
            self._next_message_id = max(self._next_message_id, row_id + 1)
        state = SavedState()
        for topic, message_id in db.execute("SELECT topic, message_id FROM retained"):
            message = messages[message_id]
            state.retained.append(message)
            self._retained[topic] = message
            self._messages[id(message)][2] += 1
        sessions: dict[str, Session] = {}
        was_online: set[str] = set()
        for client_id, expiry_interval, expires_at, connected, level, username in db.execute(
                "SELECT client_id, expiry_interval, expires_at, connected, protocol_level, username FROM sessions"):
            session = sessions[client_id] = Session(client_id, expiry_interval, protocol_level=level,
                                                     username=username)
            if connected:
                # Online when last saved: it is offline since then, as far as anyone can tell
                session.expires_at = session.expiry_deadline(saved_at - offset, persistent_client_expiration)
                was_online.add(client_id)
                self._sessions[client_id] = (expiry_interval, None, True, level, username)
            else:
                session.expires_at = None if expires_at is None else expires_at - offset
                self._sessions[client_id] = self._session_row(session, online=False)
            state.sessions.append(session)
            self._subscriptions[client_id] = {}
            self._outgoing[client_id] = {}
            self._incoming[client_id] = set()
            self._next_position[client_id] = 0
        for client_id, topic_filter, *options in db.execute(
                "SELECT client_id, topic_filter, qos, no_local, retain_as_published, retain_handling, identifier "
                "FROM subscriptions"):
            sessions[client_id].subscribe(topic_filter, options_from_row(topic_filter, options))
            self._subscriptions[client_id][topic_filter] = tuple(options)
        for client_id, position, copy_state, packet_id, message_id, qos, retain, ids in db.execute(
                "SELECT client_id, position, state, packet_id, message_id, qos, retain, subscription_ids "
                "FROM outgoing ORDER BY client_id, position"):
            message = messages[message_id]
            delivery = Delivery(message, qos, bool(retain), tuple(json.loads(ids)))
            outgoing = sessions[client_id].outgoing
            if copy_state == QUEUED:
                outgoing.enqueue(delivery, 0)
            else:
                outgoing.put_in_flight(packet_id, delivery, released=copy_state == RELEASED)
            self._outgoing[client_id][id(delivery)] = _Copy(delivery, position, copy_state, packet_id)
            self._next_position[client_id] = position + 1
            self._messages[id(message)][2] += 1
        for client_id, packet_id in db.execute("SELECT client_id, packet_id FROM incoming_qos2"):
            sessions[client_id].incoming.received(packet_id)
            self._incoming[client_id].add(packet_id)
        for client_id, due_at, message_id in db.execute("SELECT client_id, due_at, message_id FROM wills"):
            message = messages[message_id]
            state.wills.append(DelayedWill(client_id, due_at - offset, message))
            self._wills[client_id] = (due_at - offset, message)
            self._messages[id(message)][2] += 1
        return state, was_online

    # ------------------------------------------------------------------------------------------- save

    def save(self, broker, marks: ChangeMarks, offset: float) -> bool:
        """Write what changed in the marked parts of `broker`'s state; True if anything was written.

        If the transaction fails (disk full ...) nothing of it is in the file, and what this object
        remembers no longer matches the file: it forgets everything, and the next save empties the
        tables and writes the whole state again, whatever the marks."""
        self._writes = []
        self._unreferenced = []
        if self._rewrite:
            marks = self.everything(broker)
            self._writes = [(f"DELETE FROM {table}", ()) for table in
                            ("outgoing", "subscriptions", "incoming_qos2", "sessions", "retained", "wills", "messages")]
        for topic in sorted(marks.retained):
            self._save_retained(topic, broker.retained.get(topic), offset)
        for client_id in sorted(marks.sessions):
            session = broker.sessions.get(client_id)
            if session is None or session.expiry_interval == 0:
                self._forget_session(client_id)
            else:
                self._save_session(session, broker.connections.is_online(client_id), offset)
        if marks.wills:
            self._save_wills({client_id: (due, will) for client_id, due, will in broker.wills.waiting()}, offset)
        for message in self._unreferenced:
            entry = self._messages.get(id(message))
            if entry is not None and entry[2] == 0:
                self._writes.append(("DELETE FROM messages WHERE id = ?", (entry[0],)))
                del self._messages[id(message)]
        if not self._writes:
            return False
        db = self.connection
        try:
            db.execute("BEGIN")
            for statement, parameters in self._writes:
                db.execute(statement, parameters)
            db.execute("UPDATE broker SET written_by = ?, saved_at = ?", (self.written_by, time.time()))
            db.execute("COMMIT")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._forget_everything()
            raise
        finally:
            self._writes = []
        self.saves += 1
        self._rewrite = False
        return True

    def _forget_everything(self) -> None:
        """After a failed save: the next one empties the tables and writes the whole state."""
        self._messages.clear()
        self._retained.clear()
        self._sessions.clear()
        self._subscriptions.clear()
        self._outgoing.clear()
        self._next_position.clear()
        self._incoming.clear()
        self._wills.clear()
        self._rewrite = True

    @staticmethod
    def everything(broker) -> ChangeMarks:
        """Marks for the whole state of `broker` (to write it all)."""
        return ChangeMarks(sessions={session.client_id for session in broker.sessions},
                           retained={message.topic for message in broker.retained}, wills=True)

    # -- the parts

    def _save_retained(self, topic: str, message: Message | None, offset: float) -> None:
        if topic.startswith("$SYS"):
            return
        held = self._retained.get(topic)
        if message is held:
            return
        if message is None:
            del self._retained[topic]
            self._writes.append(("DELETE FROM retained WHERE topic = ?", (topic,)))
        else:
            self._retained[topic] = message
            self._writes.append(("INSERT OR REPLACE INTO retained (topic, message_id) VALUES (?, ?)",
                                 (topic, self._reference(message, offset))))
        if held is not None:
            self._release(held)

    @staticmethod
    def _session_row(session: Session, online: bool) -> tuple:
        return (session.expiry_interval, None if online else session.expires_at, online, session.protocol_level,
                session.username)

    def _save_session(self, session: Session, online: bool, offset: float) -> None:
        client_id = session.client_id
        row = self._session_row(session, online)
        if client_id not in self._sessions:
            self._subscriptions[client_id], self._outgoing[client_id] = {}, {}
            self._incoming[client_id], self._next_position[client_id] = set(), 0
        if self._sessions.get(client_id) != row:
            interval, expires_at, connected, level, username = row
            self._writes.append(("INSERT OR REPLACE INTO sessions (client_id, expiry_interval, expires_at, connected, "
                                 "protocol_level, username) VALUES (?, ?, ?, ?, ?, ?)",
                                 (client_id, interval, None if expires_at is None else expires_at + offset,
                                  int(connected), level, username)))
            self._sessions[client_id] = row
        # Subscriptions
        held = self._subscriptions[client_id]
        now_subscribed = {topic_filter: options_row(options) for topic_filter, options in session.subscriptions.items()}
        for topic_filter in held.keys() - now_subscribed.keys():
            self._writes.append(("DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?",
                                 (client_id, topic_filter)))
            del held[topic_filter]
        for topic_filter, options in now_subscribed.items():
            if held.get(topic_filter) != options:
                self._writes.append(("INSERT OR REPLACE INTO subscriptions (client_id, topic_filter, qos, no_local, "
                                     "retain_as_published, retain_handling, identifier) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (client_id, topic_filter, *options)))
                held[topic_filter] = options
        self._save_outgoing(session, offset)
        # QoS 2 packet ids received, not released
        held_ids = self._incoming[client_id]
        now_ids = session.incoming.awaiting_release
        for packet_id in held_ids - now_ids:
            self._writes.append(("DELETE FROM incoming_qos2 WHERE client_id = ? AND packet_id = ?", (client_id, packet_id)))
        for packet_id in now_ids - held_ids:
            self._writes.append(("INSERT INTO incoming_qos2 (client_id, packet_id) VALUES (?, ?)", (client_id, packet_id)))
        self._incoming[client_id] = set(now_ids)

    def _save_outgoing(self, session: Session, offset: float) -> None:
        client_id = session.client_id
        held = self._outgoing[client_id]
        outgoing = session.outgoing
        now: dict[int, tuple[Delivery, str, int | None]] = {}
        for flight in outgoing.inflight.values():
            now[id(flight.delivery)] = (flight.delivery, RELEASED if flight.released else SENT, flight.packet_id)
        for delivery in outgoing.queue:
            now[id(delivery)] = (delivery, QUEUED, None)
        for key in held.keys() - now.keys():
            copy = held.pop(key)
            self._writes.append(("DELETE FROM outgoing WHERE client_id = ? AND position = ?", (client_id, copy.position)))
            self._release(copy.delivery.message)
        for key, (delivery, state, packet_id) in now.items():
            copy = held.get(key)
            if copy is None:
                position = self._next_position[client_id]
                self._next_position[client_id] = position + 1
                held[key] = _Copy(delivery, position, state, packet_id)
                self._writes.append(("INSERT INTO outgoing (client_id, position, state, packet_id, message_id, qos, "
                                     "retain, subscription_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     (client_id, position, state, packet_id, self._reference(delivery.message, offset),
                                      delivery.qos, int(delivery.retain), json.dumps(list(delivery.subscription_ids)))))
            elif (copy.state, copy.packet_id) != (state, packet_id):
                copy.state, copy.packet_id = state, packet_id
                self._writes.append(("UPDATE outgoing SET state = ?, packet_id = ? WHERE client_id = ? AND position = ?",
                                     (state, packet_id, client_id, copy.position)))

    def _forget_session(self, client_id: str) -> None:
        if client_id not in self._sessions:
            return
        for table in ("outgoing", "subscriptions", "incoming_qos2", "sessions"):
            self._writes.append((f"DELETE FROM {table} WHERE client_id = ?", (client_id,)))
        for copy in self._outgoing.pop(client_id).values():
            self._release(copy.delivery.message)
        del self._sessions[client_id], self._subscriptions[client_id], self._incoming[client_id]
        del self._next_position[client_id]

    def _save_wills(self, waiting: dict[str, tuple[float, Message]], offset: float) -> None:
        for client_id in self._wills.keys() - waiting.keys():
            self._writes.append(("DELETE FROM wills WHERE client_id = ?", (client_id,)))
            self._release(self._wills.pop(client_id)[1])
        for client_id, (due, will) in waiting.items():
            held = self._wills.get(client_id)
            if held is not None and held[1] is will and held[0] == due:
                continue
            self._writes.append(("INSERT OR REPLACE INTO wills (client_id, due_at, message_id) VALUES (?, ?, ?)",
                                 (client_id, due + offset, self._reference(will, offset))))
            self._wills[client_id] = (due, will)
            if held is not None:
                self._release(held[1])

    # -- messages, shared by the rows that refer to them

    def _reference(self, message: Message, offset: float) -> int:
        """The row id of `message` (inserted first if the file does not hold it yet), counted once more."""
        entry = self._messages.get(id(message))
        if entry is None:
            row_id = self._next_message_id
            self._next_message_id += 1
            entry = self._messages[id(message)] = [row_id, message, 0]
            self._writes.append(("INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, "
                                 "sender) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (row_id, *message_row(message, offset))))
        entry[2] += 1
        return entry[0]

    def _release(self, message: Message) -> None:
        entry = self._messages.get(id(message))
        if entry is not None:
            entry[2] -= 1
            if entry[2] == 0:
                self._unreferenced.append(message)

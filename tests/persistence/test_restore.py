"""Persistence through the sans-IO core: save a broker's state to a real SQLite file, start a new broker
on the same file, and check that what a client sees is what it would have seen without the restart.

Each test drives broker A with fake clients (tests/broker/harness.py), saves, builds broker B on the
same file, and talks to B. Nothing is mocked: the file is a real SQLite database, read back by the
same code a restarted `refbroker` uses.
"""

from __future__ import annotations

import sqlite3
import time

from refbroker.core import Settings
from refbroker.persistence import Persistence
from refbroker.protocol import (
    Connect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Subscribe,
    Subscription,
    Will,
)

from ..broker.harness import Harness


class Saved:
    """A harness with persistence on a file; `restart()` gives a new harness restored from it."""

    def __init__(self, path, **settings):
        self.path = path
        self.settings = settings
        self.logs: list[tuple[str, str]] = []
        self.h = self._start()

    def _start(self) -> Harness:
        h = Harness(persistence=True, persistence_location=str(self.path.parent),
                    persistence_file=self.path.name, **self.settings)
        self.persistence = Persistence(h.broker.settings, lambda kind, text: self.logs.append((kind, text)),
                                       "refbroker (tests)")
        self.persistence.open(h.broker, h.now)
        return h

    def save(self) -> None:
        self.persistence.save(self.h.broker, self.h.now)

    def restart(self, *, clean: bool = True) -> Harness:
        """A clean stop saves first; clean=False is a crash after the last save."""
        if clean:
            self.persistence.close(self.h.broker, self.h.now)
        else:
            self.persistence.store.connection.close()
        self.h = self._start()
        return self.h


def v5_session(h, client_id, expiry=3600, **fields):
    return h.connect(client_id, 5, clean_start=False, properties=Properties(session_expiry_interval=expiry), **fields)


def test_retained_messages_survive_a_restart_with_their_properties(tmp_path):
    saved = Saved(tmp_path / "state.db")
    publisher, _ = saved.h.connect("p", 5)
    properties = Properties(content_type="text/plain", user_properties=[("k", "v"), ("k", "w")],
                            correlation_data=b"\x00\x01", response_topic="reply", payload_format_indicator=1)
    publisher.send(Publish("r/1", b"one", 1, True, packet_id=1, properties=properties))
    publisher.send(Publish("r/2", b"two", 0, True))
    publisher.send(Publish("r/2", b"", 0, True))  # cleared [MQTT-3.3.1-6] (5.0)
    h = saved.restart()
    client, _ = h.connect("s", 5)
    packets = client.send(Subscribe(1, [Subscription("r/#", 1)]))
    [message] = [p for p in packets if isinstance(p, Publish)]
    assert (message.topic, message.payload, message.qos, message.retain) == ("r/1", b"one", 1, True)
    assert message.properties.user_properties == [("k", "v"), ("k", "w")]  # order kept [MQTT-3.3.2-18]
    assert (message.properties.content_type, message.properties.correlation_data,
            message.properties.response_topic, message.properties.payload_format_indicator) == (
        "text/plain", b"\x00\x01", "reply", 1)


def test_a_persistent_session_keeps_its_subscriptions_and_queue_across_a_restart(tmp_path):
    saved = Saved(tmp_path / "state.db")
    subscriber, _ = v5_session(saved.h, "sub")
    subscriber.send(Subscribe(1, [Subscription("a/+", 2, no_local=True, retain_as_published=True)],
                              Properties(subscription_identifiers=[7])))
    subscriber.drop()
    publisher, _ = saved.h.connect("pub", 4)
    for number in range(3):
        publisher.send(Publish("a/b", f"m{number}".encode(), 1, packet_id=number + 1))
    publisher.send(Publish("a/b", b"qos0", 0))  # not queued for an offline client [MQTT-3.1.2-5] (3.1.1)
    h = saved.restart()
    subscriber, connack = v5_session(h, "sub")
    assert connack.session_present  # [MQTT-3.2.2-3] (5.0)
    received = [p for p in subscriber.take() if isinstance(p, Publish)]
    assert [p.payload for p in received] == [b"m0", b"m1", b"m2"]
    assert all(p.properties.subscription_identifiers == [7] for p in received)
    # The subscription and its options are back: No Local still holds, the identifier is still sent
    h2_pub, _ = h.connect("pub", 4)
    h2_pub.send(Publish("a/c", b"live", 2, packet_id=9))
    [live] = [p for p in subscriber.take() if isinstance(p, Publish)]
    assert (live.payload, live.qos, live.properties.subscription_identifiers) == (b"live", 2, [7])
    subscriber.send(Publish("a/d", b"own", 1, packet_id=1))
    assert [p for p in subscriber.take() if isinstance(p, Publish)] == []  # No Local [MQTT-3.8.3-3]


def test_in_flight_messages_are_sent_again_with_dup_and_pubrel_after_a_restart(tmp_path):
    saved = Saved(tmp_path / "state.db")
    subscriber, _ = v5_session(saved.h, "sub")
    subscriber.subscribe(("t", 2))
    publisher, _ = saved.h.connect("pub", 4)
    publisher.send(Publish("t", b"q1", 1, packet_id=1))
    publisher.send(Publish("t", b"q2-released", 2, packet_id=2))
    publisher.send(Pubrel(2))
    publisher.send(Publish("t", b"q2-sent", 2, packet_id=3))
    publisher.send(Pubrel(3))
    first = [p for p in subscriber.take() if isinstance(p, Publish)]
    assert [p.payload for p in first] == [b"q1", b"q2-released", b"q2-sent"]
    # PUBREC for the second: the broker answers PUBREL, the flow waits for PUBCOMP
    assert [type(p) for p in subscriber.send(Pubrec(first[1].packet_id))] == [Pubrel]
    saved.save()
    h = saved.restart(clean=False)  # the broker dies after that save
    subscriber, connack = v5_session(h, "sub")
    assert connack.session_present
    again = subscriber.take()
    # In the original order: PUBLISH again with DUP 1, or PUBREL where PUBREC had come [MQTT-4.4.0-1]
    assert [(type(p).__name__, getattr(p, "payload", None), getattr(p, "dup", None), p.packet_id) for p in again] == [
        ("Publish", b"q1", True, first[0].packet_id),
        ("Pubrel", None, None, first[1].packet_id),
        ("Publish", b"q2-sent", True, first[2].packet_id),
    ]


def test_the_qos2_receive_state_survives_so_a_resent_publish_is_not_delivered_twice(tmp_path):
    saved = Saved(tmp_path / "state.db")
    watcher, _ = v5_session(saved.h, "watch")
    watcher.subscribe(("x", 1))
    publisher, _ = v5_session(saved.h, "pub")
    assert publisher.send(Publish("x", b"once", 2, packet_id=5)) == [Pubrec(5)]
    watcher.take()
    saved.save()
    h = saved.restart(clean=False)
    watcher, _ = v5_session(h, "watch")
    first_delivery = [p.payload for p in watcher.take() if isinstance(p, Publish)]
    publisher, _ = v5_session(h, "pub")
    # The publisher did not get PUBCOMP: it sends the PUBLISH again with DUP 1, then PUBREL
    assert publisher.send(Publish("x", b"once", 2, dup=True, packet_id=5)) == [Pubrec(5)]
    assert publisher.send(Pubrel(5)) == [Pubcomp(5)]
    again = [p.payload for p in watcher.take() if isinstance(p, Publish)]
    assert first_delivery + again == [b"once"]  # delivered once in all [MQTT-4.3.3-10] (5.0)


def test_a_delayed_will_is_kept_and_published_when_its_delay_ends_after_the_restart(tmp_path):
    saved = Saved(tmp_path / "state.db")
    watch, _ = saved.h.connect("watch", 4)
    watch.subscribe(("w", 1))
    client, _ = saved.h.connect("c", 5, clean_start=True, properties=Properties(session_expiry_interval=600),
                                will=Will("w", b"late", 1, properties=Properties(will_delay_interval=30)))
    client.drop()
    assert watch.take() == []
    h = saved.restart()
    watch, _ = h.connect("watch", 4)
    watch.subscribe(("w", 1))
    h.advance(10)
    assert [p for p in watch.take() if isinstance(p, Publish)] == []
    h.advance(25)  # 30 s after the connection was lost (the restart took almost no time)
    assert [p.payload for p in watch.take() if isinstance(p, Publish)] == [b"late"]


def test_session_expiry_counts_the_downtime(tmp_path):
    saved = Saved(tmp_path / "state.db")
    short, _ = v5_session(saved.h, "short", expiry=1)
    short.subscribe("s")
    short.drop()
    long, _ = v5_session(saved.h, "long", expiry=3600)
    long.subscribe("l")
    long.drop()
    saved.persistence.close(saved.h.broker, saved.h.now)
    time.sleep(1.3)  # the broker is down longer than "short"'s Session Expiry Interval
    h = saved.h = saved._start()
    h.advance(0)
    assert "short" not in h.broker.sessions and "long" in h.broker.sessions  # [MQTT-4.1.0-2] (5.0)
    _, connack = v5_session(h, "short")
    assert not connack.session_present


def test_sessions_that_end_with_their_connection_are_not_saved(tmp_path):
    saved = Saved(tmp_path / "state.db")
    saved.h.connect("clean", 4)[0].subscribe("a")
    saved.h.connect("v5-zero", 5)[0].subscribe("b")
    v5_session(saved.h, "kept")[0].subscribe("c")
    saved.save()
    with sqlite3.connect(saved.path) as db:
        assert [row[0] for row in db.execute("SELECT client_id FROM sessions")] == ["kept"]


def test_the_file_is_plain_sqlite_a_learner_can_query(tmp_path):
    saved = Saved(tmp_path / "state.db")
    subscriber, _ = v5_session(saved.h, "sub")
    subscriber.subscribe(("a/#", 1))
    subscriber.drop()
    publisher, _ = saved.h.connect("pub", 4)
    publisher.send(Publish("a/b", b"hello", 1, True, packet_id=1))
    saved.save()
    with sqlite3.connect(saved.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT topic, payload FROM messages").fetchall() == [("a/b", b"hello")]
        # One message row, referred to by the retained table and by the subscriber's queue
        assert db.execute("""SELECT o.client_id, o.state, m.topic FROM outgoing o
                             JOIN messages m ON m.id = o.message_id""").fetchall() == [("sub", "queued", "a/b")]
        assert db.execute("SELECT r.topic FROM retained r JOIN messages m ON m.id = r.message_id").fetchall() == [
            ("a/b",)]
        assert db.execute("SELECT client_id, topic_filter, qos FROM subscriptions").fetchall() == [("sub", "a/#", 1)]
        assert db.execute("SELECT schema_version, written_by FROM broker").fetchone() == (1, "refbroker (tests)")


def test_a_message_row_goes_with_the_last_row_that_refers_to_it(tmp_path):
    saved = Saved(tmp_path / "state.db")
    for name in ("s1", "s2"):
        client, _ = v5_session(saved.h, name)
        client.subscribe(("t", 1))
    publisher, _ = saved.h.connect("pub", 4)
    publisher.send(Publish("t", b"shared", 1, packet_id=1))
    saved.save()
    with sqlite3.connect(saved.path) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM outgoing").fetchone() == (2,)
    h = saved.h
    for client in list(h.clients.values())[:2]:
        [publish] = [p for p in client.take() if isinstance(p, Publish)]
        client.send(Puback(publish.packet_id))
        saved.save()
    with sqlite3.connect(saved.path) as db:
        assert db.execute("SELECT count(*) FROM outgoing").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (0,)


def test_a_v3_persistent_session_is_restored_as_v3(tmp_path):
    saved = Saved(tmp_path / "state.db")
    subscriber, _ = saved.h.connect("old", 4, clean_start=False)
    subscriber.subscribe(("t", 1))
    subscriber.drop()
    publisher, _ = saved.h.connect("pub", 4)
    publisher.send(Publish("t", b"x", 1, packet_id=1))
    h = saved.restart()
    client = h.open(4)
    packets = client.send(Connect(client_id="old", protocol_level=4, clean_start=False))
    assert packets[0].session_present and [p.payload for p in packets[1:]] == [b"x"]


def test_clean_start_after_a_restart_discards_the_saved_session(tmp_path):
    saved = Saved(tmp_path / "state.db")
    v5_session(saved.h, "c")[0].subscribe("t")
    h = saved.restart()
    _, connack = h.connect("c", 5, clean_start=True, properties=Properties(session_expiry_interval=60))
    assert not connack.session_present  # [MQTT-3.1.2-4] (5.0)
    saved.save()
    with sqlite3.connect(saved.path) as db:
        assert db.execute("SELECT count(*) FROM subscriptions").fetchone() == (0,)


def test_nothing_saved_without_changes_and_no_write_for_a_ping(tmp_path):
    saved = Saved(tmp_path / "state.db")
    client, _ = v5_session(saved.h, "c")
    saved.save()
    before = saved.persistence.store.saves
    from refbroker.protocol import Pingreq
    client.send(Pingreq())
    saved.save()
    assert saved.persistence.store.saves == before

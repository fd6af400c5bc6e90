"""EmbeddedBroker (the broker other programs' tests run in-process) with persistence: `start` restores,
`stop` saves, `save()` saves now; strict durability works the same as in the command-line broker."""

from __future__ import annotations

import sqlite3

from refbroker.embedded import EmbeddedBroker

from ..broker.processes import Client


def config(tmp_path, **extra):
    values = {"persistence": True, "persistence_location": str(tmp_path), "persistence_file": "embedded.db",
              "sys_interval": 0, **extra}
    return values


def test_embedded_broker_restores_what_it_saved_at_stop(tmp_path):
    with EmbeddedBroker(config=config(tmp_path)) as broker:
        client = Client(broker.port)
        client.connect("c")
        client.publish("kept/1", b"one", 1, retain=True)
    with EmbeddedBroker(config=config(tmp_path)) as broker:
        late = Client(broker.port)
        late.connect("late")
        late.subscribe(("kept/#", 1))
        assert [(p.topic, p.payload) for p in late.messages(count=1)] == [("kept/1", b"one")]
        assert "Restored 0 sessions, 1 retained messages" in broker.logs()


def test_durable_acks_are_on_disk_when_the_puback_arrives(tmp_path):
    with EmbeddedBroker(config=config(tmp_path, persistence_durable_acks=True)) as broker:
        subscriber = Client(broker.port)
        subscriber.connect("sub", clean_start=False)
        subscriber.subscribe(("t", 1))
        subscriber.close()
        publisher = Client(broker.port)
        publisher.connect("pub")
        assert publisher.publish("t", b"durable", 1).reason_code == 0
        # The PUBACK has arrived: the message is in the file already, queued for "sub"
        with sqlite3.connect(tmp_path / "embedded.db") as db:
            rows = db.execute("""SELECT o.client_id, o.state, m.payload FROM outgoing o
                                 JOIN messages m ON m.id = o.message_id""").fetchall()
        assert rows == [("sub", "queued", b"durable")]


def test_save_writes_now(tmp_path):
    with EmbeddedBroker(config=config(tmp_path, autosave_interval=0)) as broker:
        client = Client(broker.port)
        client.connect("c")
        client.publish("r", b"x", 1, retain=True)  # PUBACK: the broker has it
        with sqlite3.connect(tmp_path / "embedded.db") as db:
            assert db.execute("SELECT count(*) FROM retained").fetchone() == (0,)
        broker.save()
        with sqlite3.connect(tmp_path / "embedded.db") as db:
            assert db.execute("SELECT topic FROM retained").fetchall() == [("r",)]

"""mosquitto.conf keys that change what clients see, on refbroker and on mosquitto 2.0.11 as processes:
Unix socket listeners, mount_point, socket_domain, include_dir's order, clientid_prefixes,
upgrade_outgoing_qos, check_retain_source, and the $SYS topics mosquitto publishes. The same config,
the same expectations.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from refbroker.protocol import Properties

from .processes import KINDS, BrokerProcess, Client

BASE = "listener {port} 127.0.0.1\nallow_anonymous true\n"


@pytest.mark.parametrize("kind", KINDS)
def test_a_unix_socket_listener(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "listener 0 {dir}/mqtt.sock\n")
    path = str(broker.dir / "mqtt.sock")
    broker.start(wait_for=path)
    try:
        over_unix = Client(path)
        assert over_unix.connect("unix").reason_code == 0
        over_unix.subscribe(("u/#", 1))
        over_tcp = Client(broker.port)
        over_tcp.connect("tcp")
        over_tcp.publish("u/1", b"across", 1)
        assert [p.payload for p in over_unix.messages(count=1)] == [b"across"]
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_mount_point_puts_a_listener_s_clients_in_their_own_subtree(kind, tmp_path):
    config = BASE + "listener {port2} 127.0.0.1\nmount_point tenant/\n"
    broker = BrokerProcess(kind, tmp_path, config).start()
    try:
        outside = Client(broker.port)
        outside.connect("outside")
        outside.subscribe(("#", 0))
        inside = Client(broker.port2)
        inside.connect("inside")
        inside.subscribe(("#", 0))
        inside.publish("a/b", b"from inside", 0)
        assert [(p.topic, p.payload) for p in outside.messages(count=1)] == [("tenant/a/b", b"from inside")]
        # The mount point is taken off the topics sent to the listener's clients, as mosquitto's manual
        # says and mosquitto 2.0.21 does; Debian's 2.0.11 still sends it along (fixed after 2.0.11)
        mount = "" if kind == "refbroker" else "tenant/"
        assert [(p.topic, p.payload) for p in inside.messages(count=1)] == [(mount + "a/b", b"from inside")]
        outside.publish("tenant/c", b"into the mount", 0)
        outside.publish("elsewhere", b"not visible", 0)
        assert [(p.topic, p.payload) for p in inside.messages()] == [(mount + "c", b"into the mount")]
    finally:
        broker.stop()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to tell the families apart")
@pytest.mark.parametrize("kind", KINDS)
def test_socket_domain_ipv4_listens_on_ipv4_only(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, "listener {port}\nsocket_domain ipv4\nallow_anonymous true\n").start()
    try:
        assert Client(broker.port).connect("v4").reason_code == 0
        with pytest.raises(OSError):
            socket.create_connection(("::1", broker.port), timeout=2).close()
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_include_dir_reads_files_in_mosquittos_order(kind, tmp_path):
    # mosquitto's order: a.conf before B.conf (case-insensitive first); a plain sort would read B first
    broker = BrokerProcess(kind, tmp_path, BASE + "include_dir {dir}/conf.d\n")
    included = broker.dir / "conf.d"
    included.mkdir()
    os.chmod(included, 0o755)
    for name, value in (("B.conf", 4), ("a.conf", 3), ("A.conf", 2), ("notes.txt", 9)):
        (included / name).write_text(f"max_inflight_messages {value}\n")
        os.chmod(included / name, 0o644)
    broker.start()
    try:
        connack = Client(broker.port, version=5).connect("v5")
        assert connack.properties.receive_maximum == 4  # B.conf came last
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_clientid_prefixes_refuses_other_client_ids(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "clientid_prefixes secure-\n").start()
    try:
        assert Client(broker.port).connect("secure-1").reason_code == 0
        assert Client(broker.port).connect("other").reason_code == 5  # not authorised
        assert Client(broker.port, version=5).connect("other").reason_code == 0x87
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_upgrade_outgoing_qos_delivers_at_the_subscription_qos(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "upgrade_outgoing_qos true\n").start()
    try:
        subscriber = Client(broker.port)
        subscriber.connect("sub")
        subscriber.subscribe(("t", 2))
        Client(broker.port).connect("pub") and None
        publisher = Client(broker.port)
        publisher.connect("pub")
        publisher.publish("t", b"x", 0)
        [message] = subscriber.messages(count=1)
        assert message.qos == 2  # mosquitto's non-standard option: [MQTT-3.8.4-6] (3.1.1) set aside
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("check", [True, False])
def test_check_retain_source_after_the_publisher_lost_write_access(kind, check, tmp_path):
    config = BASE + "acl_file {dir}/acl\n" + ("" if check else "check_retain_source false\n")
    broker = BrokerProcess(kind, tmp_path, config)
    acl = broker.dir / "acl"
    acl.write_text("topic read #\nuser writer\ntopic readwrite #\n")
    os.chmod(acl, 0o644)
    broker.start()
    try:
        writer = Client(broker.port)
        writer.connect("w", username="writer")
        writer.publish("news", b"old", 1, retain=True)
        acl.write_text("topic read #\nuser writer\ntopic read #\n")  # the writer may no longer write
        broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        reader = Client(broker.port)
        reader.connect("r")
        reader.subscribe(("news", 1))
        payloads = [p.payload for p in reader.messages(timeout=0.7)]
        # mosquitto 2.0.11 (and 2.0.21) send it with either value, whatever their manual says; so does refbroker
        assert payloads == [b"old"]
    finally:
        broker.stop()


SYS_TOPICS_ADDED = ("clients/expired", "publish/bytes/received", "publish/bytes/sent", "shared_subscriptions/count",
                    "heap/current", "heap/maximum")


@pytest.mark.parametrize("kind", KINDS)
def test_sys_topics_of_mosquitto_2_0_11(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "sys_interval 1\n").start()
    try:
        shared = Client(broker.port, version=5)
        shared.connect("worker")
        shared.subscribe(("$share/g/jobs/#", 1))
        publisher = Client(broker.port)
        publisher.connect("pub")
        publisher.publish("jobs/1", b"12345", 1)
        expiring = Client(broker.port, version=5)
        expiring.connect("expiring", properties=Properties(session_expiry_interval=1))
        expiring.close()
        time.sleep(1.5)
        watcher = Client(broker.port)
        watcher.connect("watcher")
        watcher.subscribe(("$SYS/broker/#", 0))
        received = watcher.messages(timeout=2.5, duration=2.5)
    finally:
        broker.stop()
    latest = {}
    counts: dict[str, int] = {}
    for message in received:
        key = message.topic.removeprefix("$SYS/broker/")
        latest[key] = message.payload.decode()
        counts[key] = counts.get(key, 0) + 1
    for topic in SYS_TOPICS_ADDED:
        assert topic in latest, topic
    assert int(latest["publish/bytes/received"]) >= 5
    assert int(latest["publish/bytes/sent"]) >= 5
    assert latest["shared_subscriptions/count"] == "1"
    assert latest["subscriptions/count"] == "1"  # the watcher's; the shared one is counted apart
    assert latest["clients/expired"] == "1"
    assert int(latest["heap/maximum"]) >= int(latest["heap/current"]) > 0
    # broker/version: published once (the retained copy); uptime every second
    assert counts["version"] == 1 and counts["uptime"] >= 2


@pytest.mark.parametrize("kind", KINDS)
def test_old_names_and_mosquittos_notices(kind, tmp_path):
    """retained_persistence is persistence, maximum_qos is max_qos; allow_duplicate_messages and
    retry_interval are accepted with mosquitto 2.0's notice and change nothing."""
    config = BASE + ("retained_persistence true\npersistence_location {dir}/\nmaximum_qos 1\n"
                     "allow_duplicate_messages false\nretry_interval 20\n")
    broker = BrokerProcess(kind, tmp_path, config).start()
    try:
        connack = Client(broker.port, version=5).connect("v5")
        assert connack.properties.maximum_qos == 1
        publisher = Client(broker.port)
        publisher.connect("p")
        publisher.publish("kept", b"x", 1, retain=True)
        broker.stop()
        broker.start()
        late = Client(broker.port)
        late.connect("late")
        late.subscribe(("kept", 1))
        assert [p.payload for p in late.messages(count=1)] == [b"x"]
    finally:
        broker.stop()
    output = broker.output()
    assert "The 'allow_duplicate_messages' option is now deprecated" in output
    assert "The retry_interval option is no longer available." in output

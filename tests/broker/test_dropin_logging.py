"""The log keys of mosquitto.conf, on refbroker and on mosquitto 2.0.11 as processes: log_dest (stderr,
stdout, file, topic, none), log_type (subscribe, unsubscribe ...), log_timestamp, log_timestamp_format,
connection_messages, and the log file reopened on SIGHUP. The same config, the same expectations.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from .processes import KINDS, BrokerProcess, Client

BASE = "listener {port} 127.0.0.1\nallow_anonymous true\n"


def some_traffic(port):
    client = Client(port)
    client.connect("talker")
    client.subscribe(("a/b", 1))
    from refbroker.protocol import Unsubscribe
    client.send(Unsubscribe(99, ["a/b"]))
    client.receive()
    client.publish("a/b", b"x", 0)
    from refbroker.protocol import Disconnect
    client.send(Disconnect())
    client.close()
    time.sleep(0.3)


@pytest.mark.parametrize("kind", KINDS)
def test_log_dest_file_with_timestamp_format_and_subscribe_lines(kind, tmp_path):
    config = BASE + ("log_dest file {dir}/broker.log\nlog_type notice\nlog_type subscribe\nlog_type unsubscribe\n"
                     "log_timestamp_format %Y-%m-%dT%H:%M:%S\n")
    broker = BrokerProcess(kind, tmp_path, config).start()
    try:
        some_traffic(broker.port)
    finally:
        broker.stop()
    lines = (broker.dir / "broker.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: "
    assert lines and all(re.match(stamp, line) for line in lines), lines
    messages = [re.sub(stamp, "", line) for line in lines]
    assert "talker 1 a/b" in messages            # log_type subscribe: client id, QoS, filter
    assert "talker a/b" in messages              # log_type unsubscribe: client id, filter
    assert any(m.startswith("New client connected from 127.0.0.1") and " as talker " in m for m in messages)
    assert "Client talker disconnected." in messages
    assert broker.output().strip() == ""          # nothing on stderr: the only destination is the file


@pytest.mark.parametrize("kind", KINDS)
def test_connection_messages_false_and_log_timestamp_false_on_stdout(kind, tmp_path):
    config = BASE + "log_dest stdout\nlog_type all\nconnection_messages false\nlog_timestamp false\n"
    broker = BrokerProcess(kind, tmp_path, config).start()
    try:
        some_traffic(broker.port)
    finally:
        broker.stop()
    lines = broker.stdout().splitlines()
    assert broker.stderr().strip() == ""  # stdout only
    assert any("version" in line and "running" in line for line in lines)
    assert not any(re.match(r"\d+: ", line) for line in lines)  # no timestamps
    for connection_line in ("New connection from", "New client connected", "disconnected."):
        assert not any(connection_line in line for line in lines), connection_line
    assert "talker 1 a/b" in lines  # other log types still there


@pytest.mark.parametrize("kind", KINDS)
def test_log_dest_none_logs_nothing(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "log_dest none\nlog_type all\n").start()
    try:
        some_traffic(broker.port)
    finally:
        broker.stop()
    assert broker.output().strip() == ""


@pytest.mark.parametrize("kind", KINDS)
def test_log_dest_topic_publishes_log_lines_on_sys_topics_but_never_debug(kind, tmp_path):
    config = BASE + "log_dest topic\nlog_type all\n"
    broker = BrokerProcess(kind, tmp_path, config).start()
    try:
        watcher = Client(broker.port)
        watcher.connect("watcher")
        watcher.subscribe(("$SYS/broker/log/#", 0))
        watcher.messages(timeout=0.5)
        some_traffic(broker.port)
        received = [(p.topic, p.payload.decode()) for p in watcher.messages(timeout=1.0)]
    finally:
        broker.stop()
    topics = {topic for topic, _ in received}
    assert "$SYS/broker/log/N" in topics and "$SYS/broker/log/M/subscribe" in topics
    assert "$SYS/broker/log/M/unsubscribe" in topics
    assert "$SYS/broker/log/D" not in topics  # debug lines are never published
    assert ("$SYS/broker/log/M/subscribe", "talker 1 a/b") in [(t, re.sub(r"^\d+: ", "", p)) for t, p in received]
    assert any(re.match(r"\d+: Client talker disconnected\.", payload) for _, payload in received)


@pytest.mark.parametrize("kind", KINDS)
def test_sighup_reopens_the_log_file(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "log_dest file {dir}/broker.log\n").start()
    log = broker.dir / "broker.log"
    try:
        some_traffic(broker.port)
        os.rename(log, broker.dir / "broker.log.1")  # what logrotate does
        broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        some_traffic(broker.port)
    finally:
        broker.stop()
    assert "New client connected" in (broker.dir / "broker.log.1").read_text()
    assert "New client connected" in log.read_text()  # a new file at the same path


def test_refbroker_logs_websocket_handshakes_with_log_type_websockets(tmp_path):
    from websockets.sync.client import connect as websocket_connect
    config = BASE + "listener {port2} 127.0.0.1\nprotocol websockets\nlog_dest stderr\nlog_type websockets\n"
    broker = BrokerProcess("refbroker", tmp_path, config).start()
    try:
        with websocket_connect(f"ws://127.0.0.1:{broker.port2}/mqtt", subprotocols=["mqtt"]):
            pass
        time.sleep(0.3)
    finally:
        broker.stop()
    assert "WebSocket connection upgraded (path /mqtt, subprotocol mqtt)." in broker.output()


def _can_make_mount_namespaces() -> bool:
    import shutil
    import subprocess
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_make_mount_namespaces(),
                    reason="needs root and mount namespaces (unshare) to give the broker a /dev/log of its own")
@pytest.mark.parametrize("kind", KINDS)
def test_log_dest_syslog_with_log_facility(kind, tmp_path):
    """The broker runs in a private mount namespace whose /dev/log is a datagram socket of this test:
    a real syslog receiver, the broker's real syslog() calls, no daemon needed."""
    import socket
    import threading
    receiver_path = tmp_path / "syslog.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(receiver_path))
    os.chmod(receiver_path, 0o666)
    os.chmod(tmp_path, 0o755)
    datagrams: list[bytes] = []

    def collect():
        receiver.settimeout(0.2)
        while not done.is_set():
            try:
                datagrams.append(receiver.recv(65536))
            except OSError:
                pass

    done = threading.Event()
    thread = threading.Thread(target=collect, daemon=True)
    thread.start()
    broker = BrokerProcess(kind, tmp_path, BASE + "log_dest syslog\nlog_facility 5\nlog_type notice\n")
    broker.prefix = ["unshare", "--mount", "--fork", "--kill-child=SIGTERM", "sh", "-c",
                     'mount -t tmpfs none /dev && touch /dev/log && mount --bind "$0" /dev/log && exec "$@"',
                     str(receiver_path)]
    try:
        broker.start()
        Client(broker.port).connect("to-syslog")
        time.sleep(0.5)
    finally:
        broker.stop()
        done.set()
        thread.join(2)
        receiver.close()
    texts = [datagram.decode(errors="replace") for datagram in datagrams]
    # local5 (21) * 8 + notice (5) = 173
    assert any(text.startswith("<173>") and "New client connected" in text and "to-syslog" in text
               for text in texts), texts
    assert broker.output().strip() == ""  # syslog only


@pytest.mark.parametrize("kind", KINDS)
def test_log_dest_stderr_is_the_default_and_goes_to_stderr_only(kind, tmp_path):
    for config in (BASE, BASE + "log_dest stderr\n"):
        broker = BrokerProcess(kind, tmp_path, config).start()
        try:
            some_traffic(broker.port)
        finally:
            broker.stop()
        assert "New client connected" in broker.stderr() and broker.stdout().strip() == ""


@pytest.mark.parametrize("kind", KINDS)
def test_sighup_reloads_log_type(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "log_dest file {dir}/broker.log\nlog_type notice\n")
    broker.start()
    try:
        some_traffic(broker.port)
        broker.write_config(BASE + "log_dest file {dir}/broker.log\nlog_type all\n")
        broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        some_traffic(broker.port)
    finally:
        broker.stop()
    text = (broker.dir / "broker.log").read_text()
    # Debug was off for the first round of traffic and on for the second
    assert text.count("New client connected from 127.0.0.1") == 2
    assert text.count("Received PUBLISH from talker") == 1
    assert text.index("Received PUBLISH from talker") > text.rindex("New client connected from 127.0.0.1")

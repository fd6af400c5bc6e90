"""refbroker as a drop-in mosquitto, as a process: persistence across restarts, signals, pid_file, user, -d.

Every test runs the same mosquitto.conf against refbroker (`python -m refbroker -c FILE`) and against
Debian's mosquitto 2.0.11, and expects the same behaviour from both: a key or a signal that refbroker
accepts must do what mosquitto does with it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from refbroker.protocol import Connack, Pingreq, Pingresp

from .certs import make_certificates
from .processes import KINDS, BrokerProcess, Client

BASE = "listener {port} 127.0.0.1\nallow_anonymous true\n"
PERSIST = BASE + "persistence true\npersistence_location {dir}/\n"


def persistent_subscriber(port, client_id="sub", topic="q/#", qos=1) -> Client:
    client = Client(port)
    connack = client.connect(client_id, clean_start=False)
    assert isinstance(connack, Connack) and connack.reason_code == 0
    client.subscribe((topic, qos))
    return client


def publish_some(port, topic="q/x", count=3, qos=1, retain=False):
    client = Client(port)
    client.connect("pub")
    for number in range(count):
        assert client.publish(topic, f"m{number}".encode(), qos, retain) is not None
    client.close()


def retained_topics(port) -> list[str]:
    """The topic of the first retained message a new subscriber to r/# is sent (a list: empty if none)."""
    client = Client(port)
    client.connect("late")
    client.subscribe(("r/#", 0))
    return [p.topic for p in client.messages(count=1)]


def reconnect(port, client_id="sub") -> tuple[Connack, Client]:
    client = Client(port)
    return client.connect(client_id, clean_start=False), client


@pytest.mark.parametrize("kind", KINDS)
def test_persistence_restores_retained_messages_and_sessions_after_a_clean_restart(kind, tmp_path):
    with BrokerProcess(kind, tmp_path, PERSIST) as broker:
        persistent_subscriber(broker.port).close()
        publish_some(broker.port, count=3)
        publish_some(broker.port, topic="r/kept", count=1, retain=True)
        assert broker.stop() == 0
        broker.start()
        connack, client = reconnect(broker.port)
        assert connack.session_present  # the session came back [MQTT-3.2.2-2]
        assert [p.payload for p in client.messages(count=3)] == [b"m0", b"m1", b"m2"]
        late = Client(broker.port)
        late.connect("late")
        late.subscribe(("r/#", 1))
        [retained] = late.messages(count=1)
        assert (retained.topic, retained.payload, retained.retain) == ("r/kept", b"m0", True)


@pytest.mark.parametrize("kind", KINDS)
def test_without_persistence_a_restart_forgets_everything(kind, tmp_path):
    with BrokerProcess(kind, tmp_path, BASE) as broker:
        persistent_subscriber(broker.port).close()
        publish_some(broker.port, topic="r/kept", count=1, retain=True)
        broker.stop()
        broker.start()
        connack, _ = reconnect(broker.port)
        assert not connack.session_present


@pytest.mark.parametrize("kind", KINDS)
def test_sigusr1_saves_so_that_a_kill_9_after_it_loses_nothing_before_it(kind, tmp_path):
    # autosave_interval 0: only at exit and on SIGUSR1
    with BrokerProcess(kind, tmp_path, PERSIST + "autosave_interval 0\n") as broker:
        persistent_subscriber(broker.port).close()
        publish_some(broker.port, count=2)
        broker.signal(signal.SIGUSR1)
        time.sleep(1.0)
        assert broker.alive  # SIGUSR1 does not stop the broker
        broker.kill()
        broker.start()
        connack, client = reconnect(broker.port)
        assert connack.session_present
        assert [p.payload for p in client.messages(count=2)] == [b"m0", b"m1"]


@pytest.mark.parametrize("kind", KINDS)
def test_autosave_interval_saves_by_itself(kind, tmp_path):
    with BrokerProcess(kind, tmp_path, PERSIST + "autosave_interval 1\n") as broker:
        publish_some(broker.port, topic="r/auto", count=1, retain=True)
        time.sleep(2.5)
        broker.kill()
        broker.start()
        assert retained_topics(broker.port) == ["r/auto"]


@pytest.mark.parametrize("kind", KINDS)
def test_autosave_on_changes_counts_changes_instead_of_seconds(kind, tmp_path):
    # 3 changes: a subscription and two retained messages; a 1 s timer would not have fired yet
    with BrokerProcess(kind, tmp_path, PERSIST + "autosave_interval 3\nautosave_on_changes true\n") as broker:
        persistent_subscriber(broker.port, topic="never/#").close()
        publish_some(broker.port, topic="r/changes", count=3, retain=True)
        time.sleep(0.5)
        broker.kill()
        broker.start()
        assert retained_topics(broker.port) == ["r/changes"]


@pytest.mark.parametrize("kind", KINDS)
def test_persistence_location_and_persistence_file_name_the_database(kind, tmp_path):
    config = BASE + "persistence true\npersistence_location {dir}/data\npersistence_file state.db\n"
    broker = BrokerProcess(kind, tmp_path, config)
    data = broker.dir / "data"
    data.mkdir()
    os.chmod(data, 0o777)
    broker.start()
    publish_some(broker.port, topic="r/x", count=1, retain=True)
    broker.stop()
    assert (data / "state.db").is_file()
    if kind == "refbroker":  # an SQLite database anyone can open
        with sqlite3.connect(data / "state.db") as db:
            assert db.execute("SELECT topic FROM retained").fetchall() == [("r/x",)]


@pytest.mark.parametrize("kind", KINDS)
def test_sighup_reloads_the_password_file_and_disconnects_only_who_no_longer_passes(kind, tmp_path):
    config = "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwords\n"
    broker = BrokerProcess(kind, tmp_path, config)
    passwords = broker.dir / "passwords"
    _write_passwords(passwords, ("alice", "one"), ("carol", "three"))
    with broker:
        alice, carol = Client(broker.port), Client(broker.port)
        assert alice.connect("alice", username="alice", password=b"one").reason_code == 0
        assert carol.connect("carol", username="carol", password=b"three").reason_code == 0
        _write_passwords(passwords, ("alice", "one"), ("bob", "two"))  # carol removed, bob added
        broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        assert broker.alive
        alice.send(Pingreq())
        assert isinstance(alice.receive(), Pingresp)  # still connected
        carol.send(Pingreq())
        assert carol.receive() is None  # closed: her credentials no longer pass
        assert Client(broker.port).connect("c2", username="carol", password=b"three").reason_code == 5
        assert Client(broker.port).connect("b", username="bob", password=b"two").reason_code == 0


def _write_passwords(path, *users):
    """With the real mosquitto_passwd (Debian's mosquitto package)."""
    import shutil
    import subprocess
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed: apt-get install mosquitto")
    path.unlink(missing_ok=True)
    for index, (user, password) in enumerate(users):
        subprocess.run(["mosquitto_passwd", *(["-c"] if index == 0 else []), "-b", str(path), user, password],
                       check=True, capture_output=True)
    os.chmod(path, 0o644)


@pytest.mark.parametrize("kind", KINDS)
def test_sighup_reloads_the_acl_file(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "acl_file {dir}/acl\n")
    acl = broker.dir / "acl"
    acl.write_text("topic readwrite open/#\n")
    os.chmod(acl, 0o644)
    with broker:
        reader = Client(broker.port)
        reader.connect("reader")
        reader.subscribe(("#", 0))
        writer = Client(broker.port)
        writer.connect("writer")
        writer.publish("late/x", b"before", 0)
        assert reader.messages(timeout=0.5) == []  # not allowed yet
        acl.write_text("topic readwrite open/#\ntopic readwrite late/#\n")
        broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        writer.publish("late/x", b"after", 0)
        assert [p.payload for p in reader.messages()] == [b"after"]


@pytest.mark.parametrize("kind", KINDS)
def test_sighup_reloads_the_tls_certificate_without_dropping_clients(kind, tmp_path):
    import ssl
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = make_certificates(tmp_path / "first")
    second = make_certificates(tmp_path / "second")
    config = "listener {port} 127.0.0.1\nallow_anonymous true\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n"
    broker = BrokerProcess(kind, tmp_path, config)
    cert, key = broker.dir / "server.pem", broker.dir / "server.key"
    cert.write_bytes(first.server_cert.read_bytes())
    key.write_bytes(first.server_key.read_bytes())
    for path in (cert, key):
        os.chmod(path, 0o644)
    broker.start()

    def tls_client(ca):
        context = ssl.create_default_context(cafile=str(ca))
        client = Client(broker.port)
        client.socket = context.wrap_socket(client.socket, server_hostname="localhost")
        return client

    try:
        old = tls_client(first.ca_file)
        assert old.connect("old").reason_code == 0
        cert.write_bytes(second.server_cert.read_bytes())
        key.write_bytes(second.server_key.read_bytes())
        broker.signal(signal.SIGHUP)
        time.sleep(1.0)
        new = tls_client(second.ca_file)  # verifies against the second CA only
        assert new.connect("new").reason_code == 0
        old.send(Pingreq())
        assert isinstance(old.receive(), Pingresp)
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_client(first.ca_file)
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_sigusr2_does_not_stop_the_broker(kind, tmp_path):
    with BrokerProcess(kind, tmp_path, BASE + "log_dest stderr\n") as broker:
        client = persistent_subscriber(broker.port, topic="tree/+/leaf", qos=1)
        broker.signal(signal.SIGUSR2)
        time.sleep(1.0)
        assert broker.alive
        client.send(Pingreq())
        assert isinstance(client.receive(), Pingresp)
        if kind == "refbroker":  # our own output: the tree in the log
            output = broker.output()
            assert "Subscription tree (1 subscriptions, 1 sessions):" in output
            assert "      leaf: sub (QoS 1)" in output


@pytest.mark.parametrize("kind", KINDS)
def test_pid_file_holds_the_pid_while_running(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "pid_file {dir}/broker.pid\n").start()
    pid_file = broker.dir / "broker.pid"
    try:
        assert int(pid_file.read_text()) == broker.process.pid
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_an_unwritable_pid_file_stops_the_start(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "pid_file /nonexistent-dir/broker.pid\n")
    result = broker.run()
    assert result.returncode != 0
    assert "Unable to write pid file" in result.stdout + result.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_d_puts_the_broker_in_the_background(kind, tmp_path):
    broker = BrokerProcess(kind, tmp_path, BASE + "pid_file {dir}/broker.pid\n", arguments=["-d"])
    result = broker.run()
    assert result.returncode == 0  # the foreground process returns at once
    pid_file = broker.dir / "broker.pid"
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    try:
        assert pid != os.getpid()
        for _ in range(100):
            try:
                assert Client(broker.port).connect("d").reason_code == 0
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("the daemon does not listen")
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def _uids(pid: int) -> list[int]:
    """Real, effective, saved and file-system user ids of a process."""
    with open(f"/proc/{pid}/status") as status:
        return [int(uid) for uid in next(line for line in status if line.startswith("Uid:")).split()[1:]]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs the tests to run as root")
@pytest.mark.parametrize("kind", KINDS)
def test_user_drops_privileges_after_binding(kind, tmp_path):
    import pwd
    nobody = pwd.getpwnam("nobody")
    # Port 1 would need root to bind; a free port does not, so check the uid after the start instead
    broker = BrokerProcess(kind, tmp_path, PERSIST + "user nobody\n").start()
    try:
        # The port is reachable a moment before the broker becomes "nobody" (it binds first): wait for it
        deadline = time.monotonic() + 5
        while (uids := _uids(broker.process.pid)) != [nobody.pw_uid] * 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert uids == [nobody.pw_uid] * 4
        publish_some(broker.port, topic="r/x", count=1, retain=True)
    finally:
        assert broker.stop() == 0
    # The unprivileged broker could still save its state at the end
    with broker:
        assert retained_topics(broker.port) == ["r/x"]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs the tests to run as root")
@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_user_stops_the_start(kind, tmp_path):
    result = BrokerProcess(kind, tmp_path, BASE + "user no-such-user-here\n").run()
    assert result.returncode != 0
    assert "Unable to drop privileges to 'no-such-user-here' because this user does not exist" in (
        result.stdout + result.stderr)


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_as_soon_as_the_port_answers_stops_cleanly(kind, tmp_path):
    # A service manager (or a test) may stop the broker the moment it accepts connections, before its start
    # has finished: that is still a clean stop (exit 0), not death by the signal's default action
    for attempt in range(5):
        broker = BrokerProcess(kind, tmp_path, PERSIST + "user nobody\n" * (os.geteuid() == 0)).start()
        assert broker.stop() == 0, f"attempt {attempt + 1}"

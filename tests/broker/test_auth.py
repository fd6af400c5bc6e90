"""Password file, ACL file, and what the broker answers (sans-IO core unless said otherwise)."""

import shutil
import subprocess

import pytest

from refbroker.auth import AccessControlList, AuthFileError, PasswordFile
from refbroker.auth.passwords import PasswordHash
from refbroker.config import ConfigError, parse_config
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Puback, Publish, Pubrec, Will

from .harness import Harness
from .net import StreamClient

# Written by mosquitto_passwd 2.0.11: alice/secret ($7$, the default) and carol/pw6 (-H sha512)
PASSWORDS = """\
alice:$7$101$GV8LWRJw8rtim0aL$5nQQHW1mxqEze8GdQxnm6UAu27AdkJyC7HBY+x0kUPrXDgGZ1gnUHAS+3vTjl8x+WRkxjj1HpOoVZSLFzKdtMA==
carol:$6$idv0YfFCX09lrR+8$r+vHt2eolbTgs8G2gUupKUvS26Y25lUPYhlTTU2+D6HM2uaLFgLOhSMBQ8YQZ/t5B6Gs1vKfX3R3/kgquq0ABA==
"""

ACL = """\
# anonymous clients
topic read anon/#

user alice
topic readwrite alice/#
topic read public/#
topic deny public/secret
topic write drop/#

pattern readwrite clients/%c/#
pattern read users/%u/#
"""


def test_mosquitto_2_hashes_verify():
    passwords = PasswordFile.parse(PASSWORDS)
    assert passwords.check("alice", b"secret") and not passwords.check("alice", b"Secret")
    assert passwords.check("carol", b"pw6") and not passwords.check("carol", b"pw7")
    assert not passwords.check("nobody", b"secret") and not passwords.check("alice", None)


def test_a_created_hash_round_trips_through_its_text():
    hashed = PasswordHash.create("pencil", salt=b"0123456789ab")
    assert PasswordHash.parse(str(hashed)) == hashed and hashed.matches(b"pencil")


@pytest.mark.mosquitto
def test_files_written_by_the_real_mosquitto_passwd(tmp_path):
    assert shutil.which("mosquitto_passwd"), "Debian's mosquitto package provides mosquitto_passwd"
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "dave", "correct horse"], check=True)
    subprocess.run(["mosquitto_passwd", "-H", "sha512", "-b", str(path), "erin", "battery"], check=True)
    passwords = PasswordFile.load(path)
    assert passwords.check("dave", b"correct horse") and passwords.check("erin", b"battery")
    assert not passwords.check("dave", b"battery")


@pytest.mark.parametrize("line, message", [
    ("alice", "expected username:hash"),
    ("alice:plaintext", "expected $7$"),
    ("alice:$7$x$c2FsdA==$aGFzaA==", "bad password hash"),
    ("alice:$6$!!!$aGFzaA==", "bad password hash"),
])
def test_bad_password_lines_name_file_and_line(line, message):
    with pytest.raises(AuthFileError, match=f"pw:2: .*{message.replace('$', '.')}"):
        PasswordFile.parse(f"# users\n{line}\n", "pw")


def test_acl_rules():
    acl = AccessControlList.parse(ACL)
    allows = acl.allows
    assert allows("c", None, "anon/x", 1) and not allows("c", None, "anon/x", 2)  # anonymous section
    assert allows("c", "alice", "alice/a/b", 1) and allows("c", "alice", "alice/a/b", 2)
    assert allows("c", "alice", "public/x", 1) and not allows("c", "alice", "public/x", 2)
    assert not allows("c", "alice", "public/secret", 1)  # deny wins
    assert allows("c", "alice", "drop/x", 2) and not allows("c", "alice", "drop/x", 1)
    assert not allows("c", "alice", "anon/x", 1)  # the anonymous section is not alice's
    assert allows("c7", "bob", "clients/c7/x", 2) and not allows("c7", "bob", "clients/c8/x", 2)  # %c
    assert allows("c", "bob", "users/bob/x", 1) and not allows("c", None, "users//x", 1)  # %u, none for anonymous
    assert not allows("+", "bob", "clients/a/x", 1)  # a wildcard in the client id never widens a pattern


def test_acl_subscriptions_are_refused_only_when_they_can_deliver_nothing():
    acl = AccessControlList.parse(ACL)
    may = acl.may_subscribe
    assert may("c", "alice", "alice/#") and may("c", "alice", "#") and may("c", "alice", "public/+")
    assert may("c", "alice", "+/x")  # overlaps alice/x
    assert not may("c", "alice", "other/#")   # nothing readable there
    assert not may("c", "alice", "drop/#")    # write-only
    assert not may("c", "alice", "public/secret")  # wholly denied
    assert may("c", "alice", "public/secret/+")  # the deny rule names public/secret only
    assert not may("c", "alice", "$SYS/#")


def test_bad_acl_lines():
    with pytest.raises(AuthFileError, match="acl:1: expected user, topic or pattern"):
        AccessControlList.parse("allow all\n", "acl")


@pytest.mark.parametrize("version, refused", [(4, 5), (5, 0x87)])
def test_bad_credentials_get_not_authorized_like_mosquitto(version, refused):
    h = Harness(passwords=PasswordFile.parse(PASSWORDS), allow_anonymous=False)
    for fields in ({}, {"username": "alice", "password": b"bad"}, {"username": "nobody", "password": b"x"},
                   {"username": "alice"}):
        client, connack = h.connect("c", version, expect_ok=False, **fields)
        assert connack.reason_code == refused and client.closed, fields
    _, connack = h.connect("c", version, username="alice", password=b"secret")
    assert connack.reason_code == 0


def test_password_file_with_anonymous_allowed_still_checks_named_users():
    h = Harness(passwords=PasswordFile.parse(PASSWORDS), allow_anonymous=True)
    assert h.connect("anon", 5)[1].reason_code == 0
    assert h.connect("bad", 5, expect_ok=False, username="alice", password=b"x")[1].reason_code == 0x87


def acl_harness():
    return Harness(passwords=PasswordFile.parse(PASSWORDS), acl=AccessControlList.parse(ACL), allow_anonymous=True)


@pytest.mark.parametrize("version", [4, 5])
def test_denied_publish(version):
    h = acl_harness()
    client, _ = h.connect("c", version, username="alice", password=b"secret")
    watcher, _ = h.connect("w", version, username="alice", password=b"secret")
    watcher.subscribe("#")
    code = 0x87 if version == 5 else 0  # 3.1.1: acknowledged and dropped [MQTT-3.3.5-2], as mosquitto
    assert [p.reason_code for p in client.send(Publish("public/x", b"no", qos=1, packet_id=1))] == [code]
    assert [p.reason_code for p in client.send(Publish("other", b"no", qos=2, packet_id=2))] == [code]
    assert all(not isinstance(p, Publish) for p in watcher.take())
    assert client.send(Publish("alice/x", b"yes", qos=1, packet_id=3))[-1] == Puback(3)
    assert [p.payload for p in watcher.take() if isinstance(p, Publish)] == [b"yes"]


@pytest.mark.parametrize("version, denied", [(4, 0x80), (5, 0x87)])
def test_denied_subscribe(version, denied):
    h = acl_harness()
    client, _ = h.connect("c", version, username="alice", password=b"secret")
    suback = client.subscribe("alice/#", "other/#", "public/secret", ("#", 1))[0]
    assert suback.reason_codes == [2, denied, denied, 1]


def test_messages_are_filtered_by_read_access_on_delivery():
    h = acl_harness()
    reader, _ = h.connect("r", 5, username="alice", password=b"secret")
    reader.subscribe(("#", 0))
    writer, _ = h.connect("clients", 5)  # anonymous; may write clients/clients/#
    for topic in ("clients/clients/a",):
        writer.send(Publish(topic, b"x"))
    assert reader.take() == []  # alice may not read clients/clients/a (%c is the reader's own id)
    h2 = acl_harness()
    reader, _ = h2.connect("r", 5, username="alice", password=b"secret")
    reader.subscribe(("#", 0))
    other, _ = h2.connect("o", 5, username="alice", password=b"secret")
    other.send(Publish("alice/x", b"1"))
    other.send(Publish("drop/x", b"2"))  # alice may write drop/x but not read it
    assert [p.payload for p in reader.take()] == [b"1"]


def test_retained_messages_are_filtered_too():
    h = acl_harness()
    writer, _ = h.connect("w", 5, username="alice", password=b"secret")
    writer.send(Publish("drop/r", b"hidden", retain=True))
    writer.send(Publish("alice/r", b"shown", retain=True))
    reader, _ = h.connect("r", 5, username="alice", password=b"secret")
    assert [p.payload for p in reader.subscribe("#")[1:]] == [b"shown"]


def test_a_will_to_a_forbidden_topic_is_not_published():
    h = acl_harness()
    watcher, _ = h.connect("w", 5, username="alice", password=b"secret")
    watcher.subscribe("alice/#", "public/#")
    for topic in ("public/will", "alice/will"):
        client, _ = h.connect("c" + topic, 5, username="alice", password=b"secret", will=Will(topic, b"bye"))
        client.drop()
    assert [p.topic for p in watcher.take()] == ["alice/will"]


def test_config_loads_password_and_acl_files(tmp_path):
    (tmp_path / "pw").write_text(PASSWORDS)
    (tmp_path / "acl").write_text(ACL)
    settings = parse_config(f"listener 1883\npassword_file {tmp_path / 'pw'}\nacl_file {tmp_path / 'acl'}\n")
    assert settings.passwords.check("alice", b"secret") and "alice" in settings.acl.users
    assert settings.anonymous_allowed is False
    (tmp_path / "bad").write_text("alice:nohash\n")
    with pytest.raises(ConfigError, match=r"c.conf:1: password_file: .*bad:1:"):
        parse_config(f"password_file {tmp_path / 'bad'}\n", "c.conf")


def test_end_to_end_with_a_config_file(tmp_path):
    (tmp_path / "pw").write_text(PASSWORDS)
    (tmp_path / "acl").write_text(ACL)
    config = tmp_path / "refbroker.conf"
    config.write_text(f"allow_anonymous false\npassword_file {tmp_path / 'pw'}\nacl_file {tmp_path / 'acl'}\n")
    with EmbeddedBroker(config=str(config)) as broker:
        anonymous = StreamClient(broker.port, 5)
        assert anonymous.connect("anon").reason_code == 0x87
        assert anonymous.receive() is None
        alice = StreamClient(broker.port, 5)
        assert alice.connect("a", username="alice", password=b"secret").reason_code == 0
        alice.send(Publish("public/x", b"x", qos=2, packet_id=4))
        pubrec = alice.receive()
        assert isinstance(pubrec, Pubrec) and (pubrec.packet_id, pubrec.reason_code) == (4, 0x87)
        alice.close()


def test_denied_publish_is_logged_like_mosquitto():
    h = acl_harness()
    client, _ = h.connect("c1", 4, username="alice", password=b"secret")
    client.send(Publish("other", b"hello", qos=1, packet_id=3))
    assert ("notice", "Denied PUBLISH from c1 (d0, q1, r0, m3, 'other', ... (5 bytes))") in h.logs


def test_denied_subscribe_of_an_mqtt_3_1_client_is_granted_and_delivers_nothing():
    """MQTT 3.1 has no SUBACK failure code: a denied filter is granted, but nothing reaches the client."""
    h = acl_harness()
    client, _ = h.connect("c", 3, username="alice", password=b"secret")
    suback = client.subscribe("alice/#", ("drop/#", 1))[0]  # alice may write drop/# but not read it
    assert suback.reason_codes == [2, 1]
    writer, _ = h.connect("w", 5, username="alice", password=b"secret")
    writer.send(Publish("drop/x", b"hidden"))
    writer.send(Publish("alice/x", b"shown"))
    assert [p.payload for p in client.take() if isinstance(p, Publish)] == [b"shown"]

"""The security rules of the core, driven without sockets (harness.py): per-listener settings, stored
messages checked against whoever takes them, shared-group members that may read, the test server's
rules for '#', and the config keys that set them up. The same behaviour end to end, on refbroker and
on mosquitto, is in tests/security/."""

from __future__ import annotations

import pytest

from refbroker.auth import AccessControlList, PasswordFile
from refbroker.auth.passwords import PasswordHash
from refbroker.config import ConfigError, parse_config
from refbroker.core import Listener
from refbroker.core.settings import Security
from refbroker.protocol import Connect, Publish, Puback, Suback

from .harness import Harness

ACL = AccessControlList.parse("user alice\ntopic readwrite alice/#\nuser bob\ntopic readwrite bob/#\n"
                              "user mallory\ntopic readwrite mallory/#\nuser admin\ntopic readwrite #\n")
PASSWORDS = PasswordFile({user: PasswordHash.create(user + "-pw") for user in ("alice", "bob", "mallory", "admin")})


def login(harness: Harness, user: str, client_id: str | None = None, listener: Listener | None = None, **fields):
    client = harness.open(4) if listener is None else _open_on(harness, listener)
    packets = client.send(Connect(client_id=client_id or user, protocol_level=4, username=user,
                                  password=(user + "-pw").encode(), **fields))
    assert packets[0].reason_code == 0, packets
    client.inbox = packets[1:]
    return client


def _open_on(harness: Harness, listener: Listener):
    return harness.open(4, listener=listener)


def publishes(client) -> list[Publish]:
    return [packet for packet in client.take() if isinstance(packet, Publish)]


# ------------------------------------------------------------------------------------ stored messages


def test_a_session_resumed_by_another_user_delivers_only_what_that_user_may_read():
    harness = Harness(acl=ACL, passwords=PASSWORDS, allow_anonymous=False)
    alice = login(harness, "alice", "device", clean_start=False)
    alice.subscribe(("alice/#", 1))
    alice.drop()
    admin = login(harness, "admin")
    admin.send(Publish("alice/secret", b"queued", qos=1, packet_id=1))
    bob = harness.open(4)
    connack, *rest = bob.send(Connect(client_id="device", protocol_level=4, clean_start=False, username="bob",
                                      password=b"bob-pw"))
    assert connack.session_present  # kept, as mosquitto keeps it
    assert not [p for p in rest if isinstance(p, Publish)], rest
    admin.send(Publish("alice/later", b"live", qos=1, packet_id=2))
    assert not publishes(bob)
    assert any("Denied delivery of a stored message on 'alice/secret'" in text for _, text in harness.logs)


def test_what_was_in_flight_is_not_sent_again_to_a_user_who_may_not_read_it():
    harness = Harness(acl=ACL, passwords=PASSWORDS, allow_anonymous=False)
    alice = login(harness, "alice", "device", clean_start=False)
    alice.subscribe(("alice/#", 1))
    admin = login(harness, "admin")
    admin.send(Publish("alice/secret", b"in flight", qos=1, packet_id=1))
    assert [p.payload for p in publishes(alice)] == [b"in flight"]  # never acknowledged
    alice.drop()
    bob = harness.open(4)
    _, *rest = bob.send(Connect(client_id="device", protocol_level=4, clean_start=False, username="bob",
                                password=b"bob-pw"))
    assert not [p for p in rest if isinstance(p, Publish)], rest
    alice_again = harness.open(4)
    _, *rest = alice_again.send(Connect(client_id="device", protocol_level=4, clean_start=False, username="alice",
                                        password=b"alice-pw"))
    assert not [p for p in rest if isinstance(p, Publish)], "the copy refused to bob was forgotten, not kept"


# ------------------------------------------------------------------------------------ shared subscriptions


def test_a_shared_group_member_is_chosen_among_those_that_may_read():
    harness = Harness(acl=ACL, passwords=PASSWORDS, allow_anonymous=False)
    alice, mallory = login(harness, "alice"), login(harness, "mallory")
    for member in (alice, mallory):
        assert member.subscribe(("$share/g/+/data", 1))[0].reason_codes == [1]
    admin = login(harness, "admin")
    for number in range(6):
        admin.send(Publish("alice/data", b"%d" % number, qos=1, packet_id=number + 1))
    got = publishes(alice)
    for publish in got:
        alice.send(Puback(publish.packet_id))
    assert sorted(p.payload for p in got + publishes(alice)) == [b"%d" % n for n in range(6)]
    assert not publishes(mallory)
    admin.send(Publish("nobody/data", b"x", qos=1, packet_id=9))  # no member may read it: no copy at all
    assert not publishes(alice) and not publishes(mallory)


# ------------------------------------------------------------------------------------ per-listener settings


def test_each_listener_applies_its_own_security():
    open_listener = Listener(1883, security=Security(allow_anonymous=True))
    users_listener = Listener(1884, security=Security(allow_anonymous=False, passwords=PASSWORDS, acl=ACL))
    harness = Harness(per_listener_settings=True, listeners=[open_listener, users_listener])
    anonymous = _open_on(harness, open_listener)
    assert anonymous.send(Connect(client_id="a", protocol_level=4))[0].reason_code == 0
    refused = _open_on(harness, users_listener)
    assert refused.send(Connect(client_id="b", protocol_level=4))[0].reason_code == 5
    alice = login(harness, "alice", listener=users_listener)
    assert alice.subscribe(("bob/#", 1))[0].reason_codes == [0x80]  # the ACL of her listener
    assert anonymous.subscribe(("bob/#", 1))[0].reason_codes == [1]  # no ACL on the open listener


def test_use_username_as_clientid():
    listener = Listener(1883, use_username_as_clientid=True)
    harness = Harness(passwords=PASSWORDS, allow_anonymous=False)
    phone = login(harness, "alice", "phone", listener=listener)
    assert harness.broker.connections.get(phone.id).client_id == "alice"
    login(harness, "alice", "laptop", listener=listener)
    assert phone.closed, "the second connection of alice took over the first"
    anonymous = _open_on(harness, listener)
    assert anonymous.send(Connect(client_id="x", protocol_level=4))[0].reason_code == 5


# ------------------------------------------------------------------------------------ the rules for '#'


def test_only_root_wildcard_users_subscribe_to_every_topic_and_not_for_long():
    harness = Harness(root_wildcard_users=frozenset({"wildcard"}), root_wildcard_lifetime=20)
    anonymous, _ = harness.connect("anon")
    assert anonymous.subscribe(("#", 0))[0].reason_codes == [0x80]
    assert anonymous.subscribe(("a/#", 0))[0].reason_codes == [0]
    wildcard, _ = harness.connect("w", username="wildcard")
    assert isinstance(wildcard.subscribe(("#", 0))[0], Suback)
    anonymous.send(Publish("x/y", b"early"))
    assert [p.payload for p in publishes(wildcard)] == [b"early"]
    harness.advance(20.5)
    anonymous.send(Publish("x/y", b"late"))
    assert not publishes(wildcard)
    assert "#" not in harness.broker.sessions.get("w").subscriptions


# ------------------------------------------------------------------------------------ config


def test_per_listener_settings_in_the_config(tmp_path):
    passwords = tmp_path / "passwords"
    passwords.write_text(f"alice:{PasswordHash.create('pw')}\n")
    settings = parse_config(f"""per_listener_settings true
password_file {passwords}
listener 1884 127.0.0.1
allow_anonymous true
auto_id_prefix open-
listener 1885 127.0.0.1
password_file {passwords}
use_username_as_clientid true
""")
    default, open_listener, users = settings.listeners
    assert default.port == 1883 and default.security.passwords is not None  # opened by the key, as mosquitto
    assert open_listener.security.allow_anonymous and open_listener.security.passwords is None
    assert open_listener.security.auto_id_prefix == "open-"
    assert users.security.passwords is not None and not users.security.allow_anonymous
    assert users.use_username_as_clientid
    assert settings.security_for(open_listener) is open_listener.security
    assert settings.passwords is None  # nothing global


@pytest.mark.parametrize("text, message", [
    ("allow_anonymous true\nper_listener_settings true\n", "must be set before any other security settings"),
    ("listener 8883\ncertfile {cert}\nkeyfile {key}\ncrlfile {cert}\n", "crlfile needs cafile"),
    ("listener 8883\ncertfile {cert}\nkeyfile {key}\nuse_subject_as_username true\n", "needs require_certificate"),
    ("root_wildcard_users\n", "needs at least one user name"),
])
def test_security_config_mistakes_are_config_errors(text, message, tmp_path):
    from .certs import make_certificates
    certificates = make_certificates(tmp_path)
    with pytest.raises(ConfigError, match=message):
        parse_config(text.format(cert=certificates.server_cert, key=certificates.server_key))


def test_the_global_security_is_reused_while_the_keys_stay_the_same():
    harness = Harness(acl=ACL)
    settings = harness.broker.settings
    assert settings.security_for(None) is settings.security_for(Listener(1))
    settings.acl = AccessControlList.parse("topic read #\n")
    assert settings.security_for(None).acl is settings.acl

"""Access control on refbroker and on mosquitto: a client cannot read or write outside its rights by any
path, and a second subscriber with full rights (`admin`) shows that the message was there to leak.

    pytest tests/security/test_acl.py -q

One config, loaded by both brokers (per_listener_settings true):

    main      passwords + acl          alice, bob, mallory: their own subtree; admin: everything;
                                       pattern clients/%c/# for everyone
    strict    passwords + acl-strict   the same users, alice only alice/public/# (her rights changed)
    labels    anonymous, acl-patterns  user names are only labels: users/%u/#, clients/%c/#

Where mosquitto 2.0.11 behaves differently the test says so and is an expected failure on mosquitto
(strict: if mosquitto changes, the test tells).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conformance.client import RawClient
from refbroker.auth.passwords import PasswordHash
from refbroker.protocol import MQTT_3_1_1, MQTT_5, Properties, Publish, Will

from .brokers import KINDS, BrokerProcess, free_ports

QUIET = 1.0
PASSWORDS = {user: f"{user}-SECRET-{uuid.uuid4().hex[:8]}" for user in ("alice", "bob", "mallory", "admin")}

ACL = """user alice
topic readwrite alice/#
user bob
topic readwrite bob/#
user mallory
topic readwrite mallory/#
user admin
topic readwrite #
pattern readwrite clients/%c/#
"""
ACL_STRICT = """user alice
topic readwrite alice/public/#
user admin
topic readwrite #
"""
ACL_PATTERNS = """pattern readwrite users/%u/#
pattern readwrite clients/%c/#
"""


@pytest.fixture(scope="module", params=KINDS)
def broker(request):
    directory = Path(tempfile.mkdtemp(prefix="security-acl-"))
    directory.chmod(0o755)  # mosquitto started as root reads the files as user mosquitto
    try:
        files = {"passwords": "".join(f"{u}:{PasswordHash.create(p)}\n" for u, p in PASSWORDS.items()),
                 "acl": ACL, "acl-strict": ACL_STRICT, "acl-patterns": ACL_PATTERNS}
        for name, text in files.items():
            (directory / name).write_text(text)
            (directory / name).chmod(0o644)
        main, strict, labels = free_ports(3)
        config = f"""per_listener_settings true
listener {main} 127.0.0.1
allow_anonymous false
password_file {directory / 'passwords'}
acl_file {directory / 'acl'}
listener {strict} 127.0.0.1
allow_anonymous false
password_file {directory / 'passwords'}
acl_file {directory / 'acl-strict'}
listener {labels} 127.0.0.1
allow_anonymous true
acl_file {directory / 'acl-patterns'}
"""
        with BrokerProcess(request.param, config, directory / "run", wait_ports=[main, strict, labels]) as process:
            process.ports = {"main": main, "strict": strict, "labels": labels}
            yield process
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clients():
    made: list[RawClient] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def connect(broker, clients):
    def connect(user: str | None, *, listener: str = "main", client_id: str | None = None, version: int = MQTT_3_1_1,
                clean: bool = True, will: Will | None = None, properties: Properties | None = None,
                password: str | None = None) -> RawClient:
        client = RawClient("127.0.0.1", broker.ports[listener], version,
                           client_id=client_id or f"{user or 'anon'}-{uuid.uuid4().hex[:8]}", name=user or "anonymous")
        clients.append(client)
        secret = password if password is not None else PASSWORDS.get(user) if user else None
        client.connect(username=user, password=secret.encode() if secret else None, clean_start=clean, will=will,
                       properties=properties)
        return client
    return connect


def mosquitto_differs(broker, request, why: str) -> None:
    if broker.kind == "mosquitto":
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"mosquitto 2.0.11: {why}"))


def received(client: RawClient, payload: bytes, seconds: float) -> bool:
    """Did a PUBLISH with `payload` reach `client` within `seconds`? (Returns as soon as it does.)"""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for publish in client.collect_publishes(max(0.0, deadline - time.monotonic()), until_count=1):
            if publish.payload == payload:
                return True
    return False


def topics_received(client: RawClient, seconds: float) -> list[str]:
    return [publish.topic for publish in client.collect_publishes(seconds)]


def secret() -> bytes:
    return f"secret-{uuid.uuid4().hex[:10]}".encode()


# ---------------------------------------------------------------------------------------- reading


def test_wildcard_subscriptions_read_nothing_forbidden(connect):
    mallory, admin = connect("mallory"), connect("admin")
    admin.subscribe(("alice/#", 1))
    mallory.subscribe(("#", 1), ("+/secret", 1), ("alice/#", 1), ("mallory/#", 1))
    payload = secret()
    connect("alice").publish("alice/secret", payload, qos=1)
    assert received(admin, payload, 3), "the observer did not get the message: nothing was published"
    assert not received(mallory, payload, QUIET), "mallory read alice/secret through a wildcard subscription"
    connect("mallory").publish("mallory/own", b"control", qos=1)
    assert received(mallory, b"control", 3), "mallory's subscriptions deliver nothing at all"


def test_retained_messages_are_read_only_with_rights(connect):
    payload = secret()
    topic = f"alice/retained/{uuid.uuid4().hex[:6]}"
    connect("admin").publish(topic, payload, qos=1, retain=True)
    try:
        mallory = connect("mallory")
        mallory.subscribe(("#", 1), ("alice/#", 1), (topic, 1))
        assert not received(mallory, payload, QUIET), "mallory read a retained message of alice's"
        alice = connect("alice")
        alice.subscribe((topic, 1))
        assert received(alice, payload, 3), "alice did not get her own retained message"
    finally:
        connect("admin").publish(topic, b"", qos=1, retain=True)


def test_shared_subscriptions_read_nothing_forbidden(connect):
    mallory, admin = connect("mallory"), connect("admin")
    admin.subscribe(("alice/#", 1))
    mallory.subscribe(("$share/g1/#", 1), ("$share/g2/alice/#", 1))
    payload = secret()
    connect("alice").publish("alice/shared", payload, qos=1)
    assert received(admin, payload, 3)
    assert not received(mallory, payload, QUIET), "mallory read alice's message through a shared subscription"


def test_a_shared_group_member_takes_away_no_message_it_may_not_read(connect, broker, request):
    """alice and mallory both join $share/grp/+/data (each may read only her own .../data): every
    message on alice/data goes to alice, none is given to mallory to be dropped."""
    mosquitto_differs(broker, request, "the group's round robin gives every other message on alice/data to "
                                       "mallory, whose ACL then drops it: alice receives 3 of 6")
    group = f"grp{uuid.uuid4().hex[:6]}"
    alice, mallory = connect("alice"), connect("mallory")
    for member in (alice, mallory):
        member.subscribe((f"$share/{group}/+/data", 1))
    admin = connect("admin")
    for number in range(6):
        admin.publish("alice/data", b"%d" % number, qos=1)
    got = sorted(p.payload for p in alice.collect_publishes(3.0, until_count=6))
    assert not mallory.collect_publishes(QUIET), "mallory received messages of alice/data"
    assert got == [b"%d" % n for n in range(6)], f"alice received {got} of the 6 messages on alice/data"


# ---------------------------------------------------------------------------------------- writing


def test_a_will_to_a_forbidden_topic_is_not_published(connect):
    admin = connect("admin")
    admin.subscribe(("alice/#", 1), ("mallory/#", 1))
    forbidden, allowed = secret(), secret()
    connect("mallory", will=Will("alice/will", forbidden, qos=1)).close()  # closed without DISCONNECT
    connect("mallory", will=Will("mallory/will", allowed, qos=1)).close()
    assert received(admin, allowed, 3), "the allowed will was not published: wills do not work at all"
    assert not received(admin, forbidden, QUIET), "mallory's will reached alice/will"


def test_a_topic_alias_cannot_carry_a_message_to_a_forbidden_topic(connect):
    """v5: mallory registers alias 1 on her own topic, re-points it at alice/alias with a denied PUBLISH,
    then publishes with the alias only: nothing reaches alice/alias."""
    admin = connect("admin")
    admin.subscribe(("alice/#", 1), ("mallory/#", 1))
    mallory = connect("mallory", version=MQTT_5)
    mallory.publish("mallory/alias", b"registered", qos=1, properties=Properties(topic_alias=1))
    assert received(admin, b"registered", 3)
    denied = mallory.publish("alice/alias", b"denied", qos=1, properties=Properties(topic_alias=1))
    through_alias = secret()
    mallory.publish("", through_alias, qos=1, properties=Properties(topic_alias=1))
    assert not received(admin, b"denied", QUIET), f"mallory published to alice/alias ({denied})"
    assert not received(admin, through_alias, QUIET), "a message sent with the alias reached a forbidden topic"


# ----------------------------------------------------------------------- client ids and user names


@pytest.mark.parametrize("client_id", ["+", "#", "a/b", "..", "a/+"])
def test_a_client_id_cannot_widen_a_client_id_pattern(connect, client_id, broker, request):
    """pattern readwrite clients/%c/#: a client id with '+', '#', '/' or '..' gives its client no rule
    that reaches another client's topics (client "a"'s clients/a/b/x)."""
    if client_id == "a/b":
        mosquitto_differs(broker, request, "client id 'a/b' turns clients/%c/# into clients/a/b/#, a part of "
                                           "client a's topics, and reads clients/a/b/x")
    admin = connect("admin")
    admin.subscribe(("clients/#", 1))
    mallory = connect("mallory", client_id=client_id)
    filters = ["clients/#", "clients/+/#", "clients/a/#"]
    if "+" not in client_id and "#" not in client_id:
        filters.append(f"clients/{client_id}/#")  # the widened rule itself (a valid filter only without wildcards)
    mallory.subscribe(*[(topic_filter, 1) for topic_filter in filters])
    payload = secret()
    connect("bob", client_id="a").publish("clients/a/b/x", payload, qos=1)
    assert received(admin, payload, 3), "client a could not publish under its own pattern"
    assert not received(mallory, payload, QUIET), f"client id {client_id!r} read client a's topic"


@pytest.mark.parametrize("username", ["+", "#", "alice/x", ".."])
def test_a_user_name_cannot_widen_a_user_name_pattern(connect, username, broker, request):
    """On a listener whose user names are only labels (anonymous, pattern users/%u/#), a user name with
    '+', '#', '/' or '..' reads nothing under another user's name."""
    if username == "alice/x":
        mosquitto_differs(broker, request, "user name 'alice/x' turns users/%u/# into users/alice/x/#, a part of "
                                           "alice's topics, and reads users/alice/x")
    observer = connect("observer", listener="labels", password="")
    observer.subscribe(("users/observer/#", 1))
    mallory = connect(username, listener="labels", password="")
    mallory.subscribe(("users/#", 1), ("users/+/#", 1), ("users/alice/#", 1))
    payload = secret()
    connect("alice", listener="labels", password="").publish("users/alice/x", payload, qos=1)
    assert not received(mallory, payload, QUIET), f"user name {username!r} read users/alice/x"
    connect("observer", listener="labels", password="").publish("users/observer/control", b"control", qos=1)
    assert received(observer, b"control", 3), "the pattern grants nothing at all"


# ------------------------------------------------------------------------- queued messages and rights


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_queued_messages_go_only_to_a_reader_with_rights(connect, version):
    """bob connects with the client id of alice's persistent session: the session is resumed (both
    brokers keep it: Session Present 1) but none of alice's queued or later messages reach bob."""
    session_id = f"alice-device-{uuid.uuid4().hex[:6]}"
    persistent = Properties(session_expiry_interval=300) if version == MQTT_5 else None
    alice = connect("alice", client_id=session_id, clean=False, version=version, properties=persistent)
    alice.subscribe(("alice/#", 1))
    alice.disconnect()
    admin = connect("admin")
    admin.subscribe(("alice/#", 1))
    queued = secret()
    admin.publish("alice/queued", queued, qos=1)
    assert received(admin, queued, 3)
    bob = connect("bob", client_id=session_id, clean=False, version=version, properties=persistent)
    assert bob.connack.session_present, "the session was not kept (a choice the test should be told of)"
    assert not received(bob, queued, QUIET), "bob received a message queued for alice's session"
    later = secret()
    admin.publish("alice/later", later, qos=1)
    assert received(admin, later, 3)
    assert not received(bob, later, QUIET), "bob received alice's messages through her session's subscription"


def _leave_a_message_in_flight(connect, session_id: str, version: int, persistent: Properties | None) -> bytes:
    """alice receives a QoS 1 message on her persistent session and goes away without PUBACK: the
    message stays in flight in the session, to be sent again on resumption [MQTT-4.4.0-1]."""
    alice = connect("alice", client_id=session_id, clean=False, version=version, properties=persistent)
    alice.subscribe(("alice/#", 1))
    payload = secret()
    connect("admin").publish("alice/in-flight", payload, qos=1)
    got = [p.payload for p in alice.collect_publishes(3.0, until_count=1, ack=False)]
    assert got == [payload], f"alice did not receive the message ({got}): nothing is in flight"
    alice.close()  # no PUBACK, no DISCONNECT
    return payload


@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5])
def test_in_flight_messages_go_only_to_a_reader_with_rights(connect, version):
    """A message in flight to alice (sent, not acknowledged) is sent again when her session resumes
    [MQTT-4.4.0-1], but not to bob, who resumes it with her client id and may not read alice/#. The
    control: when alice herself resumes the same way, she does get it again."""
    persistent = Properties(session_expiry_interval=300) if version == MQTT_5 else None
    control_id = f"alice-control-{uuid.uuid4().hex[:6]}"
    payload = _leave_a_message_in_flight(connect, control_id, version, persistent)
    alice = connect("alice", client_id=control_id, clean=False, version=version, properties=persistent)
    assert alice.connack.session_present
    assert received(alice, payload, 3), "alice did not get her in-flight message again: nothing to protect"
    session_id = f"alice-in-flight-{uuid.uuid4().hex[:6]}"
    payload = _leave_a_message_in_flight(connect, session_id, version, persistent)
    bob = connect("bob", client_id=session_id, clean=False, version=version, properties=persistent)
    assert bob.connack.session_present, "the session was not kept (a choice the test should be told of)"
    assert not received(bob, payload, QUIET), "bob received a message in flight to alice's session"


def test_queued_messages_follow_the_rights_of_the_listener_the_session_resumes_on(connect):
    """alice's session queues alice/private and alice/public messages, then she comes back on the listener
    whose ACL lets her read alice/public/# only: she receives that one alone."""
    session_id = f"alice-roaming-{uuid.uuid4().hex[:6]}"
    alice = connect("alice", client_id=session_id, clean=False)
    alice.subscribe(("alice/#", 1))
    alice.disconnect()
    admin = connect("admin")
    private, public = secret(), secret()
    admin.publish("alice/private/x", private, qos=1)
    admin.publish("alice/public/x", public, qos=1)
    alice = connect("alice", listener="strict", client_id=session_id, clean=False)
    assert alice.connack.session_present
    got = [p.payload for p in alice.collect_publishes(2.0)]
    assert public in got, f"alice did not receive what she may read ({got})"
    assert private not in got, "a message queued under the old rights went past the new ones"


# ---------------------------------------------------------------------------------------------- logs


def test_passwords_never_appear_in_the_log(connect, broker):
    """Right and wrong passwords, with every log type on (mosquitto: log_type all; refbroker: -v)."""
    wrong = f"wrong-SECRET-{uuid.uuid4().hex[:8]}"
    for user in PASSWORDS:
        connect(user)
    client = RawClient("127.0.0.1", broker.ports["main"], MQTT_3_1_1, client_id="wrong-password", name="wrong")
    connack = client.connect(username="alice", password=wrong.encode(), expect_success=False)
    client.close()
    assert connack.reason_code in (4, 5)
    time.sleep(0.3)
    log = broker.logs()
    assert "u'admin'" in log, "the log does not show the connections at all"
    for password in [*PASSWORDS.values(), wrong]:
        assert password not in log, f"a password appears in {broker.kind}'s log"

"""The test server policy, listener by listener and user by user (see conformance/policy/__init__.py).

    pytest --pyargs conformance.policy --policy-layout test-server/layout.json

Each check connects the way a user's client would (MQTT 3.1.1 over the listener's transport) and looks
only at what comes back on the wire, so it runs against refbroker, mosquitto or test.mosquitto.org
alike. "Not delivered" is shown by a second client with full rights that does receive the message
(or by the absence of the message for `QUIET` seconds where nothing may arrive at all).
"""

from __future__ import annotations

import ssl
import time
import uuid

import pytest

from refbroker.protocol import MQTT_3_1_1, Connect, Publish
from refbroker.protocol.reason_codes import SUBACK_FAILURE_V3

from ..client import HarnessError, RawClient, summarize
from ..transports import Endpoint, open_stream
from .layout import PolicyLayout, PolicyListener, load_layout

QUIET = 1.0       # seconds in which a message that is not delivered would have arrived
VERSION = MQTT_3_1_1
NOT_AUTHORISED = (4, 5)  # CONNACK return codes: bad user name or password, not authorised


def _layout(config: pytest.Config) -> PolicyLayout | None:
    text = config.getoption("--policy-layout", None)
    if not text:
        return None
    try:
        return load_layout(text, cafile=config.getoption("--policy-cafile"),
                           client_cert=config.getoption("--policy-client-cert"),
                           client_key=config.getoption("--policy-client-key"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


_PARAMETERS = {
    # fixture name -> which listeners it runs on
    "any_listener": lambda ls: [li for li in ls if li.certificate != "expired" and not li.client_certificate],
    "open_listener": lambda ls: [li for li in ls if not li.authenticated and li.certificate != "expired"],
    "user_listener": lambda ls: [li for li in ls if li.authenticated],
    "client_certificate_listener": lambda ls: [li for li in ls if li.client_certificate],
    "second_ca_listener": lambda ls: [li for li in ls if li.certificate == "second-ca"],
    "expired_listener": lambda ls: [li for li in ls if li.certificate == "expired"],
    # the '#' lifetime takes 20 s a listener: checked on the first authenticated listener only
    "lifetime_listener": lambda ls: [li for li in ls if li.authenticated][:1],
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    layout = _layout(metafunc.config)
    for name, choose in _PARAMETERS.items():
        if name in metafunc.fixturenames:
            listeners = choose(layout.listeners) if layout is not None else []
            metafunc.parametrize(name, listeners, ids=[listener.id for listener in listeners])
    if "limited_user" in metafunc.fixturenames:
        metafunc.parametrize("limited_user", ["rw", "ro", "wo"])


@pytest.fixture(scope="session")
def layout(request: pytest.FixtureRequest) -> PolicyLayout:
    found = _layout(request.config)
    if found is None:
        pytest.skip("no test server to check: give --policy-layout DIR/layout.json (refbroker --test-server "
                    "--out DIR) or --policy-layout public")
    return found


@pytest.fixture
def clients():
    made: list[RawClient] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def topic() -> str:
    return f"policy-check/{uuid.uuid4().hex[:12]}"


def _client(layout: PolicyLayout, listener: PolicyListener, clients: list, name: str, *, user: str | None = None,
            password: str | None = None, certificate: bool | None = None, connect: bool = True):
    """A connected client (CONNACK returned too); `user` logs in with the layout's password for it."""
    endpoint = layout.endpoint(listener)
    if certificate or (certificate is None and listener.client_certificate):
        if not (layout.client_cert and layout.client_key):
            pytest.skip(f"{listener.id} needs a client certificate: give --policy-client-cert and --policy-client-key")
        endpoint = endpoint.with_client_certificate(layout.client_cert, layout.client_key)
    try:
        client = RawClient(endpoint=endpoint, version=VERSION, client_id=f"policy-{uuid.uuid4().hex[:12]}",
                           name=f"{name}@{listener.id}")
    except HarnessError as exc:
        pytest.fail(f"{listener.id} ({listener.purpose}): cannot connect: {exc}")
    clients.append(client)
    if not connect:
        return client, None
    if user is not None and password is None:
        password = layout.users[user]
    connack = client.connect(username=user, password=password.encode() if password is not None else None,
                             expect_success=False)
    return client, connack


def _connected(layout, listener, clients, name, **kwargs) -> RawClient:
    client, connack = _client(layout, listener, clients, name, **kwargs)
    assert connack.reason_code == 0, f"{client.name}: CONNECT refused: {summarize(connack)}"
    return client


def _granted(code: int) -> bool:
    return code in (0, 1, 2)


def _received(client: RawClient, seconds: float, payload: bytes) -> bool:
    """Did a PUBLISH with `payload` arrive within `seconds`? (Returns as soon as it does.)"""
    return any(publish.payload == payload for publish in _publishes(client, seconds, payload))


# ------------------------------------------------------------------------------------- who may connect


def test_anonymous_clients_where_allowed(layout, any_listener, clients):
    """Unauthenticated listeners accept a client without user name; authenticated ones refuse it."""
    client, connack = _client(layout, any_listener, clients, "anonymous")
    if any_listener.authenticated:
        assert connack.reason_code in NOT_AUTHORISED, (
            f"{any_listener.id} ({any_listener.purpose}) accepted an anonymous client: {summarize(connack)}")
    else:
        assert connack.reason_code == 0, (
            f"{any_listener.id} ({any_listener.purpose}) refused an anonymous client: {summarize(connack)}")


def test_users_log_in_with_their_password_only(layout, user_listener, clients):
    """Every user logs in on an authenticated listener with its password; a wrong password is refused."""
    for user in layout.users:
        _client_ok, connack = _client(layout, user_listener, clients, user, user=user)
        assert connack.reason_code == 0, f"{user_listener.id}: user {user} refused: {summarize(connack)}"
    _client_bad, connack = _client(layout, user_listener, clients, "rw-wrong", user="rw", password="not-the-password")
    assert connack.reason_code in NOT_AUTHORISED, f"{user_listener.id}: a wrong password was accepted: {connack}"


def test_client_certificate_is_required(layout, client_certificate_listener, clients):
    """Without a client certificate the TLS handshake fails or the connection closes before CONNACK;
    with one of the server's CA the client is accepted."""
    listener = client_certificate_listener
    refused = None
    try:
        sock = open_stream(layout.endpoint(listener), timeout=5)
    except (ssl.SSLError, OSError) as exc:
        refused = f"the TLS handshake failed: {exc}"
    else:
        # TLS 1.3: the server checks the (missing) certificate after the client's side of the handshake
        # is done; its alert arrives at the first read
        with sock:
            try:
                sock.sendall(Connect(client_id="policy-no-certificate").encode(VERSION))
                answer = sock.recv(4096)
            except (ssl.SSLError, OSError) as exc:
                refused = f"closed: {exc}"
            else:
                accepted = answer[:2] == b"\x20\x02" and answer[3:4] == b"\x00"
                refused = None if accepted else f"answered {answer.hex(' ') or 'nothing'} and closed"
    assert refused, f"{listener.id} accepted a TLS client without certificate"
    _connected(layout, listener, clients, "with-certificate", certificate=True)


def test_second_ca_listener_shows_a_certificate_of_another_ca(layout, second_ca_listener, clients):
    """The 'Let's Encrypt' listener: its certificate does not verify against the main CA, and does
    against its own (the layout's second CA, or the system's CAs for the public server)."""
    main_ca = Endpoint(second_ca_listener.transport, layout.host, second_ca_listener.port, cafile=layout.ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        open_stream(main_ca, timeout=5).close()
    _connected(layout, second_ca_listener, clients, "second-ca")


def test_expired_certificate_listener(layout, expired_listener):
    """The deliberately expired certificate: a client that verifies it refuses the connection, and
    OpenSSL says why (X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired")."""
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        open_stream(layout.endpoint(expired_listener), timeout=5).close()
    assert refused.value.verify_code == 10 and "expired" in refused.value.verify_message, refused.value


# ---------------------------------------------------------------------------------- what they may do


def test_anonymous_clients_publish_and_subscribe_anywhere(layout, open_listener, clients, topic):
    subscriber = _connected(layout, open_listener, clients, "subscriber")
    suback = subscriber.subscribe((f"{topic}/#", 1))
    assert _granted(suback.reason_codes[0]), f"{open_listener.id}: subscription to {topic}/# refused: {suback}"
    publisher = _connected(layout, open_listener, clients, "publisher")
    publisher.publish(f"{topic}/a/b", b"anywhere", qos=1)
    assert _received(subscriber, 3.0, b"anywhere"), f"{open_listener.id}: the message was not delivered"


def test_anonymous_clients_may_not_subscribe_to_every_topic(layout, open_listener, clients):
    """A subscription to exactly '#' is refused (SUBACK 0x80) for anonymous clients."""
    client = _connected(layout, open_listener, clients, "anonymous")
    suback = client.subscribe(("#", 0))
    assert suback.reason_codes == [SUBACK_FAILURE_V3], \
        f"{open_listener.id}: an anonymous subscription to '#' was granted: {summarize(suback)}"


def test_user_rights(layout, user_listener, limited_user, clients, topic):
    """rw reads and writes, ro only reads, wo only writes; an rw observer shows what was delivered."""
    may_read, may_write = {"rw": (True, True), "ro": (True, False), "wo": (False, True)}[limited_user]
    observer = _connected(layout, user_listener, clients, "observer", user="rw")
    assert _granted(observer.subscribe((f"{topic}/#", 1)).reason_codes[0])
    user = _connected(layout, user_listener, clients, limited_user, user=limited_user)
    suback = user.subscribe((f"{topic}/#", 1))
    if may_read:
        assert _granted(suback.reason_codes[0]), f"{limited_user} may read but its subscription was refused: {suback}"
    user.publish(f"{topic}/from-user", b"written by " + limited_user.encode(), qos=1)
    written = _received(observer, 3.0 if may_write else QUIET, b"written by " + limited_user.encode())
    assert written == may_write, (f"{user_listener.id}: a PUBLISH of {limited_user} was "
                                  f"{'not ' if not written else ''}delivered")
    observer.publish(f"{topic}/to-user", b"for the user", qos=1)
    read = _received(user, 3.0 if may_read else QUIET, b"for the user")
    assert read == may_read, f"{user_listener.id}: {limited_user} {'did not receive' if not read else 'received'} " \
                             "a message on its subscription"


def test_only_the_wildcard_user_subscribes_to_every_topic(layout, user_listener, limited_user, clients):
    """A subscription to exactly '#' by rw, ro or wo is refused (SUBACK 0x80): only the wildcard user may."""
    listener = user_listener
    client = _connected(layout, listener, clients, limited_user, user=limited_user)
    suback = client.subscribe(("#", 0))
    assert suback.reason_codes == [SUBACK_FAILURE_V3], \
        f"{listener.id}: {limited_user}'s subscription to '#' was granted: {summarize(suback)}"


def test_wildcard_subscription_lasts_its_lifetime(layout, lifetime_listener, clients, topic):
    """The wildcard user may subscribe to '#'; the subscription is removed after the layout's lifetime
    (20 s on the public server)."""
    listener = lifetime_listener
    wildcard = _connected(layout, listener, clients, "wildcard", user=layout.root_wildcard_user)
    suback = wildcard.subscribe(("#", 0))
    subscribed_at = time.monotonic()
    assert _granted(suback.reason_codes[0]), f"the wildcard user's subscription to '#' was refused: {suback}"
    publisher = _connected(layout, listener, clients, "publisher", user="rw")
    publisher.publish(f"{topic}/early", b"early", qos=1)
    assert _received(wildcard, 3.0, b"early"), "the subscription to '#' delivered nothing"
    time.sleep(max(0.0, subscribed_at + layout.root_wildcard_lifetime + 2.0 - time.monotonic()))
    wildcard.collect_publishes(0.2)  # whatever else the busy '#' brought meanwhile
    publisher.publish(f"{topic}/late", b"late", qos=1)
    late = [p for p in wildcard.collect_publishes(QUIET * 2) if p.payload == b"late"]
    assert not late, (f"the subscription to '#' still delivered {layout.root_wildcard_lifetime + 2} s after it "
                      "was made")


def _publishes(client: RawClient, seconds: float, payload: bytes) -> list[Publish]:
    """PUBLISHes until one carries `payload` (or `seconds` pass)."""
    found: list[Publish] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = client.collect_publishes(max(0.0, deadline - time.monotonic()), until_count=1)
        found += batch
        if not batch or batch[-1].payload == payload:
            break
    return found

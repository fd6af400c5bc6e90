"""Enhanced authentication (5.0 section 4.12) with SCRAM-SHA-256: the mechanism (both roles), the
AUTH exchange in the core, re-authentication, errors; and once end to end."""

import base64

import pytest

from refbroker.auth import AccessControlList, AuthFileError, ScramUsers
from refbroker.auth.scram import ScramClient, ScramError, ScramServer, StoredCredentials
from refbroker.config import parse_config
from refbroker.embedded import EmbeddedBroker
from refbroker.protocol import Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Properties, Publish

from .harness import Harness
from .net import StreamClient

METHOD = "SCRAM-SHA-256"
USERS = ScramUsers.from_passwords({"alice": "pencil", "bob": "hunter2"})


# ------------------------------------------------------------------------------- the mechanism

def test_rfc_7677_example():
    # The SCRAM-SHA-256 exchange printed in RFC 7677 section 3, byte for byte
    credentials = StoredCredentials.from_password("pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    client = ScramClient("user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    server = ScramServer({"user": credentials}.get, nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    assert client.client_first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = server.receive_client_first(client.client_first())
    assert server_first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    client_final = client.receive_server_first(server_first)
    assert client_final == (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    server_final = server.receive_client_final(client_final)
    assert server_final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    client.receive_server_final(server_final)
    assert server.username == "user"


def run_exchange(username, password, lookup=USERS.get):
    client, server = ScramClient(username, password), ScramServer(lookup)
    final = server.receive_client_final(client.receive_server_first(server.receive_client_first(client.client_first())))
    client.receive_server_final(final)


def test_wrong_password_and_unknown_user_fail_at_the_proof():
    run_exchange("alice", "pencil")
    with pytest.raises(ScramError, match="invalid proof"):
        run_exchange("alice", "pen")
    with pytest.raises(ScramError, match="invalid proof"):
        run_exchange("mallory", "pencil")


def test_the_client_checks_the_server_too():
    client = ScramClient("alice", "pencil")
    client.receive_server_first(ScramServer(USERS.get).receive_client_first(client.client_first()))
    with pytest.raises(ScramError, match="server signature"):
        client.receive_server_final(b"v=" + base64.b64encode(b"x" * 32))
    with pytest.raises(ScramError, match="refused: invalid-proof"):
        client.receive_server_final(b"e=invalid-proof")


@pytest.mark.parametrize("first", [b"p=tls-unique,,n=a,r=x", b"n,,r=x,n=a", b"", b"n,,n=a,r=", b"\xff"])
def test_malformed_client_first_messages(first):
    with pytest.raises(ScramError):
        ScramServer(USERS.get).receive_client_first(first)


def test_names_with_comma_and_equals_are_escaped():
    users = ScramUsers.from_passwords({"a,b=c": "pw"})
    run_exchange("a,b=c", "pw", users.get)


def test_scram_users_file(tmp_path):
    stored = StoredCredentials.from_password("pencil")
    users = ScramUsers.parse(f"# comment\nalice:{stored}\nbob:plain words\n")
    assert users.get("alice") == stored
    run_exchange("bob", "plain words", users.get)
    with pytest.raises(AuthFileError, match="f:1:"):
        ScramUsers.parse("alice\n", "f")
    with pytest.raises(AuthFileError, match="f:1: expected SCRAM-SHA-256"):
        ScramUsers.parse("alice:SCRAM-SHA-256$x\n", "f")
    path = tmp_path / "scram"
    path.write_text(f"alice:{stored}\n")
    assert parse_config(f"scram_users {path}\n").scram_users.get("alice") == stored


# ------------------------------------------------------------------------ the AUTH exchange (core)

def start(h, username="alice", password="pencil", client_id="c", **fields):
    """CONNECT with SCRAM; returns (fake client, SCRAM client, what the broker answered)."""
    scram = ScramClient(username, password)
    client = h.open(5)
    answer = client.send(Connect(client_id=client_id, protocol_level=5, properties=Properties(
        authentication_method=METHOD, authentication_data=scram.client_first()), **fields))
    return client, scram, answer


def finish(client, scram, server_first):
    return client.send(Auth(0x18, Properties(authentication_method=METHOD,
                                             authentication_data=scram.receive_server_first(server_first))))


def test_scram_login():
    h = Harness(scram_users=USERS, allow_anonymous=False)
    client, scram, answer = start(h)
    [challenge] = answer
    # AUTH 0x18 with the same method [MQTT-4.12.0-2], [MQTT-4.12.0-5]
    assert isinstance(challenge, Auth) and challenge.reason_code == 0x18
    assert challenge.properties.authentication_method == METHOD
    [connack] = finish(client, scram, challenge.properties.authentication_data)
    assert isinstance(connack, Connack) and connack.reason_code == 0
    assert connack.properties.authentication_method == METHOD  # [MQTT-4.12.0-5]
    scram.receive_server_final(connack.properties.authentication_data)  # the broker proved itself
    assert h.broker.sessions["c"].username == "alice"
    assert client.send(Pingreq()) == [Pingresp()]


def test_wrong_password_is_connack_0x87():
    h = Harness(scram_users=USERS)
    client, scram, [challenge] = start(h, password="wrong")
    [connack] = finish(client, scram, challenge.properties.authentication_data)
    assert connack.reason_code == 0x87 and client.closed  # [MQTT-4.12.0-4]
    assert "c" not in h.broker.sessions


def test_unsupported_method_is_connack_0x8c():
    h = Harness(scram_users=USERS)
    client = h.open(5)
    [connack] = client.send(Connect(client_id="c", protocol_level=5,
                                    properties=Properties(authentication_method="GS2-KRB5")))
    assert connack.reason_code == 0x8C and client.closed  # [MQTT-4.12.0-1]
    h2 = Harness()  # no scram_users: SCRAM is not offered either
    _, _, [connack] = start(h2)
    assert connack.reason_code == 0x8C


@pytest.mark.parametrize("packet", [
    Publish("t", b"too early"),
    Auth(0x19, Properties(authentication_method=METHOD, authentication_data=b"n,,n=alice,r=x")),
    Auth(0x18, Properties(authentication_method="SCRAM-SHA-1", authentication_data=b"c=biws")),
    Auth(0x00, Properties(authentication_method=METHOD)),
])
def test_out_of_order_packets_during_authentication_are_protocol_errors(packet):
    h = Harness(scram_users=USERS)
    client, _, _ = start(h)
    [connack] = client.send(packet)
    assert isinstance(connack, Connack) and connack.reason_code == 0x82 and client.closed


def test_disconnect_during_authentication_just_closes():
    h = Harness(scram_users=USERS)
    client, _, _ = start(h)
    assert client.send(Disconnect()) == [] and client.closed


def test_auth_without_a_method_in_connect_is_a_protocol_error():
    h = Harness(scram_users=USERS)
    client, _ = h.connect("plain", 5)
    [disconnect] = client.send(Auth(0x19, Properties(authentication_method=METHOD)))
    assert disconnect.reason_code == 0x82 and client.closed  # [MQTT-4.12.0-7]


def connected(h, **fields):
    client, scram, [challenge] = start(h, **fields)
    [connack] = finish(client, scram, challenge.properties.authentication_data)
    assert connack.reason_code == 0
    return client


def reauthenticate(client, username="alice", password="pencil"):
    scram = ScramClient(username, password)
    answer = client.send(Auth(0x19, Properties(authentication_method=METHOD, authentication_data=scram.client_first())))
    return scram, answer


def test_re_authentication():
    h = Harness(scram_users=USERS)
    client = connected(h)
    scram, [challenge] = reauthenticate(client)
    assert challenge.reason_code == 0x18
    # Other packets keep flowing during re-authentication (4.12.1)
    assert client.send(Pingreq()) == [Pingresp()]
    [done] = finish(client, scram, challenge.properties.authentication_data)
    assert isinstance(done, Auth) and done.reason_code == 0x00
    assert done.properties.authentication_method == METHOD
    scram.receive_server_final(done.properties.authentication_data)
    assert not client.closed


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("bob", "hunter2")])
def test_failed_re_authentication_is_disconnect_0x87(username, password):
    h = Harness(scram_users=USERS)
    client = connected(h)
    scram, [challenge] = reauthenticate(client, username, password)
    [disconnect] = finish(client, scram, challenge.properties.authentication_data)
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == 0x87 and client.closed  # [MQTT-4.12.1-2]


def test_re_authentication_errors():
    h = Harness(scram_users=USERS)
    client = connected(h)
    # 0x18 with nothing in progress
    [disconnect] = client.send(Auth(0x18, Properties(authentication_method=METHOD, authentication_data=b"x")))
    assert disconnect.reason_code == 0x82
    client = connected(h, client_id="d")
    # another method [MQTT-4.12.1-1]
    [disconnect] = client.send(Auth(0x19, Properties(authentication_method="PLAIN")))
    assert disconnect.reason_code == 0x82


def test_scram_user_name_feeds_the_acl():
    h = Harness(scram_users=USERS, acl=AccessControlList.parse("user alice\ntopic alice/#\n"))
    client = connected(h)
    # accepted (0x10 No matching subscribers, as mosquitto: nobody subscribed), or refused
    assert client.send(Publish("alice/x", b"ok", qos=1, packet_id=1))[0].reason_code == 0x10
    assert client.send(Publish("bob/x", b"no", qos=1, packet_id=2))[0].reason_code == 0x87


def test_authentication_must_finish_within_the_connect_timeout():
    h = Harness(scram_users=USERS)
    client, _, _ = start(h)
    h.advance(91)
    assert client.closed


# ------------------------------------------------------------------------------------- end to end

def test_scram_end_to_end(tmp_path):
    (tmp_path / "scram").write_text(f"alice:{StoredCredentials.from_password('pencil')}\n")
    config = tmp_path / "c.conf"
    config.write_text(f"allow_anonymous false\nscram_users {tmp_path / 'scram'}\n")
    with EmbeddedBroker(config=str(config)) as broker:
        client = StreamClient(broker.port, 5)
        scram = ScramClient("alice", "pencil")
        challenge = client.connect("e2e", properties=Properties(authentication_method=METHOD,
                                                               authentication_data=scram.client_first()))
        assert isinstance(challenge, Auth) and challenge.reason_code == 0x18
        client.send(Auth(0x18, Properties(authentication_method=METHOD,
                                          authentication_data=scram.receive_server_first(
                                              challenge.properties.authentication_data))))
        connack = client.receive()
        assert connack.reason_code == 0
        scram.receive_server_final(connack.properties.authentication_data)
        anonymous = StreamClient(broker.port, 5)
        assert anonymous.connect("anon").reason_code == 0x87
        client.close()

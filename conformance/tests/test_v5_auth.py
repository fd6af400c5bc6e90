"""MQTT 5.0 enhanced authentication (4.12, AUTH).

A CONNECT naming a method the server does not support is refused. The AUTH exchanges need a target
that offers a method the suite knows (`BrokerTarget.enhanced_auth`, or `[enhanced_auth]` in a target
profile): SCRAM-SHA-256 (RFC 5802 / RFC 7677), with refbroker.auth.scram's client role. Without one
they are not applicable.
"""

from __future__ import annotations

import pytest

from conformance import check, not_applicable, statement
from conformance.client import ConformanceFailure
from refbroker.auth.scram import ScramClient, ScramError
from refbroker.protocol import Auth, Connack, Connect, Properties
from refbroker.protocol.primitives import encode_variable_byte_integer

from .helpers import expect_close_for_bad_packet, expect_connect_refused

V5 = "5.0"


@pytest.mark.spec("MQTT-4.12.0-1", "MQTT-4.12.0-4", "MQTT-3.1.4-2", "MQTT-4.13.2-1", "MQTT-3.2.2-6",
                  "MQTT-3.2.2-7", version=V5)
def test_unsupported_authentication_method_refused(client_factory, version, broker):
    """CONNECT with an Authentication Method the server does not know: no AUTH, no successful CONNACK; it
    may send CONNACK 0x8C (Bad authentication method) or 0x87 (Not authorized), and closes."""
    if broker.profile.feature("enhanced_auth") is True:
        not_applicable("the target profile declares enhanced authentication")
    client = client_factory(connect=False)
    client.send(Connect(client_id=client.client_id, protocol_level=5,
                        properties=Properties(authentication_method="x-conformance-unknown-method",
                                              authentication_data=b"\x00\x01")))
    # an AUTH (f0 ...) instead fails too; what a refusing CONNACK carries besides its code is not regulated
    expect_connect_refused(client, v5_codes=(0x8C, 0x87))


@pytest.mark.spec("MQTT-3.15.1-1", "MP-2.1.3-a", "MQTT-4.13.1-1", version=V5)
def test_auth_with_invalid_flags_closes(client_factory, version):
    """AUTH with fixed-header flags 0001 is malformed: the server closes the connection."""
    client = client_factory()
    client.send_raw(bytes((0xF1,)) + Auth(0x18, Properties(authentication_method="x")).encode(5)[1:],
                    note="AUTH with flags 0001")
    expect_close_for_bad_packet(client)


SCRAM = "SCRAM-SHA-256"


def _scram_credentials(broker) -> tuple[str, str]:
    auth = broker.enhanced_auth
    if auth is None:
        not_applicable(broker.target.no_enhanced_auth_reason)
    if auth.get("method") != SCRAM:
        not_applicable(f"the target's enhanced-authentication method {auth.get('method')!r} is not one the "
                       f"suite implements ({SCRAM})")
    return auth["username"], auth["password"]


def _auth(reason_code: int, data: bytes) -> Auth:
    return Auth(reason_code, Properties(authentication_method=SCRAM, authentication_data=data))


def _expect_continue(client, what: str) -> Auth:
    """The server's AUTH asking for more: reason 0x18 [MQTT-4.12.0-2], the same method [MQTT-4.12.0-5]."""
    auth = client.expect(Auth)
    check("MQTT-4.12.0-2", auth.reason_code == 0x18, f"{what}: the server's AUTH has reason 0x{auth.reason_code:02X}, "
          "not 0x18 Continue authentication")
    check("MQTT-4.12.0-5", auth.properties.authentication_method == SCRAM,
          f"{what}: the server's AUTH names method {auth.properties.authentication_method!r}")
    if not auth.properties.authentication_data:
        raise ConformanceFailure(f"{what}: the server's AUTH carries no SCRAM challenge")
    return auth


def _scram_connect(client_factory, username: str, password: str):
    """CONNECT with client-first, AUTH 0x18 server-first, AUTH 0x18 client-final; returns (client, scram)."""
    client = client_factory("scram", connect=False)
    scram = ScramClient(username, password)
    client.send(Connect(client_id=client.client_id, protocol_level=5, properties=Properties(
        authentication_method=SCRAM, authentication_data=scram.client_first())))
    challenge = _expect_continue(client, "CONNECT")
    client.send(_auth(0x18, scram.receive_server_first(challenge.properties.authentication_data)))
    return client, scram


def _authenticated(client_factory, broker):
    username, password = _scram_credentials(broker)
    client, scram = _scram_connect(client_factory, username, password)
    connack = client.expect(Connack)
    if connack.reason_code != 0x00:
        raise ConformanceFailure(f"SCRAM-SHA-256 with the target's credentials was refused: {connack}")
    check("MQTT-4.12.0-5", connack.properties.authentication_method == SCRAM,
          f"the successful CONNACK does not repeat the Authentication Method: {connack}")
    if connack.properties.authentication_data is not None:
        try:
            scram.receive_server_final(connack.properties.authentication_data)
        except ScramError as exc:
            raise AssertionError(f"the server's final SCRAM message does not verify: {exc}") from None
    return client, username, password


@pytest.mark.spec("MQTT-3.15.2-1", "MQTT-4.12.0-2", "MQTT-4.12.0-5", version=V5)
def test_enhanced_authentication_exchange(client_factory, version, broker):
    """SCRAM-SHA-256: CONNECT with the method and client-first, the server's AUTH 0x18, the client's AUTH
    0x18 with its proof, then CONNACK 0x00 repeating the method; the connection then works."""
    client, _, _ = _authenticated(client_factory, broker)
    client.ping()


@pytest.mark.spec("MQTT-4.12.0-4", "MQTT-3.2.2-6", "MQTT-3.2.2-7", version=V5)
def test_enhanced_authentication_failure_refused(client_factory, version, broker):
    """A wrong password: the proof fails, the server sends CONNACK 0x80 or above (or nothing) and closes."""
    username, password = _scram_credentials(broker)
    client, _ = _scram_connect(client_factory, username, password + "-wrong")
    expect_connect_refused(client, v5_codes=tuple(range(0x80, 0x100)))


def _reauthenticate(client, username: str, password: str) -> Auth | None:
    """AUTH 0x19 with client-first, AUTH 0x18 from the server, AUTH 0x18 with client-final."""
    scram = ScramClient(username, password)
    client.send(_auth(0x19, scram.client_first()))
    challenge = _expect_continue(client, "re-authentication")
    client.send(_auth(0x18, scram.receive_server_first(challenge.properties.authentication_data)))
    return scram


@pytest.mark.spec("MQTT-3.15.2-1", "MQTT-4.12.0-2", "MQTT-4.12.0-5", "MQTT-4.12.1-2", version=V5)
def test_reauthentication(client_factory, version, broker):
    """Re-authentication (AUTH 0x19) with the right password ends in AUTH 0x00 Success and the connection
    stays; a failed re-authentication closes the connection (a DISCONNECT with a reason code >= 0x80 may
    come first) [MQTT-4.12.1-2]."""
    client, username, password = _authenticated(client_factory, broker)
    scram = _reauthenticate(client, username, password)
    success = client.expect(Auth)
    if success.reason_code != 0x00:
        raise ConformanceFailure(f"re-authentication with the right password did not succeed: {success}")
    check("MQTT-4.12.0-5", success.properties.authentication_method == SCRAM,
          f"the AUTH does not repeat the Authentication Method: {success}")
    if success.properties.authentication_data is not None:
        try:
            scram.receive_server_final(success.properties.authentication_data)
        except ScramError as exc:
            raise AssertionError(f"the server's final SCRAM message does not verify: {exc}") from None
    client.ping()

    _reauthenticate(client, username, password + "-wrong")
    with statement("MQTT-4.12.1-2"):
        expect_close_for_bad_packet(client, reasons=tuple(range(0x80, 0x100)))


def _raw_auth(reason_code: int, properties: bytes) -> bytes:
    body = bytes((reason_code,)) + encode_variable_byte_integer(len(properties)) + properties
    return bytes((0xF0,)) + encode_variable_byte_integer(len(body)) + body


def _utf8_property(identifier: int, text: str) -> bytes:
    data = text.encode("utf-8")
    return bytes((identifier,)) + len(data).to_bytes(2, "big") + data


_METHOD = _utf8_property(0x15, SCRAM)
_DATA = bytes((0x16,)) + (4).to_bytes(2, "big") + b"n,,x"
_REASON = _utf8_property(0x1F, "why")


@pytest.mark.parametrize("duplicate", ["method", "data", "reason_string"])
@pytest.mark.spec("PE-3.15.2.2.2-a", "PE-3.15.2.2.3-a", "PE-3.15.2.2.4-a", version=V5)
def test_auth_duplicate_property_is_protocol_error(client_factory, version, broker, duplicate):
    """An AUTH carrying the Authentication Method, Authentication Data or Reason String twice is a Protocol
    Error: the server closes (a DISCONNECT before it carries 0x82 or 0x81)."""
    client, _, _ = _authenticated(client_factory, broker)
    properties = {"method": _METHOD + _METHOD + _DATA, "data": _METHOD + _DATA + _DATA,
                  "reason_string": _METHOD + _DATA + _REASON + _REASON}[duplicate]
    client.send_raw(_raw_auth(0x19, properties), note=f"AUTH 0x19 with the {duplicate} property twice")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.15.2-2", "MQTT-3.15.2-3", version=V5)
def test_auth_fits_client_maximum_packet_size(client_factory, version, broker):
    """The server's AUTH packets stay within the client's Maximum Packet Size (Reason String and User
    Properties left out when they would not fit)."""
    username, password = _scram_credentials(broker)
    probe, _ = _scram_connect(client_factory, username, password)
    probe.expect(Connack)
    sizes = [len(bytes.fromhex(e["hex"].replace(" ", ""))) for e in probe.trace
             if e["dir"] == "in" and e["type"] == "AUTH"]
    limit = max(sizes)  # the challenge as the server sends it to a client without a limit
    client = client_factory("limited", connect=False)
    scram = ScramClient(username, password)
    client.send(Connect(client_id=client.client_id, protocol_level=5, properties=Properties(
        authentication_method=SCRAM, authentication_data=scram.client_first(), maximum_packet_size=limit)))
    challenge = _expect_continue(client, "CONNECT with a Maximum Packet Size")
    client.send(_auth(0x18, scram.receive_server_first(challenge.properties.authentication_data)))
    client.expect(Connack)
    for entry in client.trace:
        if entry["dir"] == "in" and entry["type"] == "AUTH":
            size = len(bytes.fromhex(entry["hex"].replace(" ", "")))
            # the only parts a server may leave out to fit are the Reason String and the User Properties
            statement_id = "MQTT-3.15.2-3" if "user_properties" in entry.get("summary", "") else "MQTT-3.15.2-2"
            check(statement_id, size <= limit,
                  f"an AUTH of {size} bytes to a client whose Maximum Packet Size is {limit}")

"""MQTT 5.0 enhanced authentication (4.12, AUTH).

A default broker offers no authentication method, which is itself testable: a CONNECT naming a method
the server does not support is refused. The AUTH exchanges need a broker with a method configured and
known to the suite; until target profiles can declare one, those tests are not applicable.
"""

from __future__ import annotations

import pytest

from conformance import not_applicable
from refbroker.protocol import Auth, Connect, Properties

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
    connack = expect_connect_refused(client, v5_codes=(0x8C, 0x87))  # an AUTH (f0 ...) instead fails too
    if connack is not None:
        assert connack.properties.authentication_method in (None, "x-conformance-unknown-method"), connack


@pytest.mark.spec("MQTT-3.15.1-1", "MP-2.1.3-a", "MQTT-4.13.1-1", version=V5)
def test_auth_with_invalid_flags_closes(client_factory, version):
    """AUTH with fixed-header flags 0001 is malformed: the server closes the connection."""
    client = client_factory()
    client.send_raw(bytes((0xF1,)) + Auth(0x18, Properties(authentication_method="x")).encode(5)[1:],
                    note="AUTH with flags 0001")
    expect_close_for_bad_packet(client)


@pytest.mark.spec("MQTT-3.15.2-1", "MQTT-3.15.2-2", "MQTT-3.15.2-3", "MQTT-4.12.0-2", "MQTT-4.12.0-5",
                  "MQTT-4.12.1-2", "PE-3.15.2.2.2-a", "PE-3.15.2.2.3-a", "PE-3.15.2.2.4-a", version=V5)
def test_enhanced_authentication_exchange(client_factory, version, broker):
    """AUTH exchanges (reason codes 0x18/0x19, the Authentication Method repeated in every AUTH and in the
    CONNACK, re-authentication and its failure, AUTH within the client's Maximum Packet Size, duplicate
    AUTH properties) need a broker with an enhanced-authentication method the suite knows."""
    not_applicable("no enhanced-authentication method is configured for this target (a default broker offers "
                   "none, and target profiles cannot declare one yet)")

"""interop/attribution.py on packet sessions built with the project's codec (no network)."""

from __future__ import annotations

from interop.attribution import attribute, statement_text, summary
from pcap.session import BROKER, CLIENT, Chunk, Session
from refbroker.protocol import MQTT_3_1_1, MQTT_5, Connack, Connect, Properties, Puback, Publish, Pubrec


def _session(version: int, *chunks: tuple) -> Session:
    session = Session(1, ("127.0.0.1", 50000), ("127.0.0.1", 1883))
    session.chunks.append(Chunk(0.0, CLIENT, Connect(client_id="c", protocol_level=version).encode()))
    session.chunks.append(Chunk(0.01, BROKER, Connack().encode(version)))
    for n, (direction, data) in enumerate(chunks, 1):
        session.chunks.append(Chunk(0.01 * (n + 1), direction, data))
    return session


def test_a_qos2_publish_answered_with_puback_is_the_brokers_fault():
    session = _session(MQTT_3_1_1, (CLIENT, Publish(topic="t", payload=b"x", qos=2, packet_id=7).encode(MQTT_3_1_1)),
                       (BROKER, Puback(packet_id=7).encode(MQTT_3_1_1)))
    text = attribute({"mqtt_version": "3.1.1"}, [session])
    assert text.startswith("the broker answered a QoS 2 PUBLISH (packet id 7) with PUBACK instead of PUBREC")
    assert "[MQTT-4.3.3-2]" in text and "40 02 00 07" in text


def test_a_correct_qos2_flow_is_not_blamed():
    session = _session(MQTT_5, (CLIENT, Publish(topic="t", qos=2, packet_id=1).encode(MQTT_5)),
                       (BROKER, Pubrec(packet_id=1).encode(MQTT_5)))
    text = attribute({"mqtt_version": "5.0", "statement": "MQTT-3.3.2-17"}, [session])
    assert text.startswith("the check enforces [MQTT-3.3.2-17]")
    assert "1 PUBLISH client -> broker, 0 PUBLISH broker -> client" in text


def test_bytes_the_codec_refuses_are_attributed_to_their_sender():
    # a PUBLISH whose topic contains a wildcard, sent by the broker [MQTT-3.3.2-2]
    bad = Publish(topic="a/b", payload=b"x").encode(MQTT_3_1_1).replace(b"a/b", b"a/+")
    session = _session(MQTT_3_1_1, (BROKER, bad))
    text = attribute({"mqtt_version": "3.1.1"}, [session])
    assert text.startswith("the broker sent bytes the codec refuses")
    assert bad[:8].hex(" ") in text


def test_summary_shows_properties_and_statement_text_quotes_the_catalogue():
    properties = Properties(user_properties=[("a", "1")], content_type="text/plain")
    session = _session(MQTT_5, (CLIENT, Publish(topic="t", payload=b"p", qos=1, packet_id=3,
                                                properties=properties).encode(MQTT_5)))
    publish = [d for d in session.packets() if d.name == "PUBLISH"][0]
    assert "user_properties=[('a', '1')]" in summary(publish) and "content_type='text/plain'" in summary(publish)
    assert statement_text("MQTT-4.7.2-1", "5.0").startswith("[MQTT-4.7.2-1] ")
    assert statement_text("3.1.1 §3.8.4", "3.1.1") == "3.1.1 §3.8.4"

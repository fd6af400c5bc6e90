"""Who broke what in a cell that did not pass, read from the recorded packets (sans-IO: sessions in, text out).

In order:

1. Bytes that break a rule: a packet the project's codec refuses names its statement; it was sent by the
   client library (direction client -> broker) or by the broker. The attribution quotes the statement's
   summary from the catalogue and the packet's bytes.
2. A limit of the client's CONNECT that the broker went past: Maximum Packet Size, Receive Maximum.
   A message forwarded at a higher QoS than it was published with.
   An acknowledgement of the wrong kind: a QoS 1 PUBLISH must be answered with PUBACK, a QoS 2 PUBLISH
   with PUBREC; the side that answered otherwise broke the statement of its version.
3. Otherwise, for a failed check that names a statement, the flow of application messages: what the
   client library put on the wire (PUBLISH client -> broker) and what the broker sent on (PUBLISH
   broker -> client), so "the broker did not forward it", "the broker forwarded it without the
   property" and "the broker sent it but the library did not report it" can be told apart.
4. A feature missing (not applicable) never gets here: the runner decides that from the profile and the
   library's API before the scenario runs.
"""

from __future__ import annotations

from conformance.catalogue import load_catalogue
from pcap.session import BROKER, CLIENT

_catalogue = None


def statement_text(statement: str | None, version: str) -> str:
    """'[MQTT-3.3.2-17] The Server MUST send all User Properties ...' (the catalogue's summary)."""
    global _catalogue
    if not statement:
        return ""
    if not statement.startswith("MQTT-"):
        return statement
    if _catalogue is None:
        _catalogue = load_catalogue()
    row = _catalogue.get((version, statement))
    return f"[{statement}] {row.summary}" if row else f"[{statement}]"


def _properties(packet) -> str:
    properties = getattr(packet, "properties", None)
    if not properties:
        return ""
    shown = []
    for name, value in properties.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        shown.append(f"{name}={value!r}")
    return " {" + ", ".join(shown) + "}" if shown else ""


def summary(decoded) -> str:
    """One line for a decoded packet of a trace."""
    packet = decoded.packet
    if packet is None:
        return f"not decodable: {decoded.error}"
    name = packet.name
    if name == "PUBLISH":
        payload = packet.payload[:40].decode("utf-8", errors="replace")
        text = f"{packet.topic!r} q{packet.qos}{' retain' if packet.retain else ''}{' dup' if packet.dup else ''}"
        if packet.packet_id is not None:
            text += f" id={packet.packet_id}"
        return f"{text} payload={payload!r}{_properties(packet)}"
    if name == "CONNECT":
        return (f"v{packet.protocol_level} client_id={packet.client_id!r} clean={packet.clean_start}"
                f"{' will=' + repr(packet.will.topic) if getattr(packet, 'will', None) else ''}{_properties(packet)}")
    if name == "CONNACK":
        return f"session_present={packet.session_present} code={packet.reason_code}{_properties(packet)}"
    if name == "SUBSCRIBE":
        return ", ".join(f"{s.topic_filter!r} q{s.qos}" for s in packet.subscriptions) + _properties(packet)
    parts = [f"{field}={getattr(packet, field)}" for field in ("packet_id", "reason_code", "reason_codes")
             if getattr(packet, field, None) not in (None, [], ())]
    return " ".join(parts) + _properties(packet)


#: the acknowledgement a QoS 1 / QoS 2 PUBLISH must get, and the statement that says so, per version
_ACKS = {1: ("PUBACK", {"3.1.1": "MQTT-4.3.2-2", "5.0": "MQTT-4.3.2-4"}),
         2: ("PUBREC", {"3.1.1": "MQTT-4.3.3-2", "5.0": "MQTT-4.3.3-8"})}


def _acknowledgement_mismatch(sessions, version: str) -> str | None:
    """A QoS 1/2 PUBLISH answered with the wrong packet (e.g. a QoS 2 PUBLISH with PUBACK)."""
    for session in sessions:
        waiting = {}  # (direction of the PUBLISH, packet id) -> the PUBLISH
        for decoded in session.packets():
            packet = decoded.packet
            if packet is None:
                continue
            if packet.name == "PUBLISH" and packet.qos in _ACKS and packet.packet_id is not None:
                waiting[(decoded.direction, packet.packet_id)] = decoded
            elif packet.name in ("PUBACK", "PUBREC"):
                other = BROKER if decoded.direction is CLIENT else CLIENT  # the side that sent the PUBLISH
                publish = waiting.pop((other, getattr(packet, "packet_id", None)), None)
                if publish is None:
                    continue
                expected, rules = _ACKS[publish.packet.qos]
                if packet.name != expected:
                    who = "the client library" if decoded.direction is CLIENT else "the broker"
                    return (f"{who} answered a QoS {publish.packet.qos} PUBLISH (packet id {packet.packet_id}) with "
                            f"{packet.name} instead of {expected} — {statement_text(rules.get(version), version)}; "
                            f"PUBLISH bytes: {publish.raw[:48].hex(' ')}; answer bytes: {decoded.raw.hex(' ')}")
    return None


def _client_limits_exceeded(sessions, version: str) -> str | None:
    """The broker sent more than the client's CONNECT allowed: a packet over its Maximum Packet Size
    [MQTT-3.1.2-24], or more unacknowledged QoS 1/2 PUBLISHes than its Receive Maximum [MQTT-3.3.4-9]."""
    if version != "5.0":
        return None
    for session in sessions:
        maximum_size = receive_maximum = None
        in_flight: set[int] = set()
        for decoded in session.packets():
            packet = decoded.packet
            if decoded.direction is CLIENT:
                if packet is not None and packet.name == "CONNECT":
                    maximum_size = packet.properties.maximum_packet_size
                    receive_maximum = packet.properties.receive_maximum
                elif packet is not None and packet.name in ("PUBACK", "PUBCOMP", "PUBREC"):
                    if packet.name != "PUBREC" or (getattr(packet, "reason_code", 0) or 0) >= 0x80:
                        in_flight.discard(packet.packet_id)
                continue
            if maximum_size and len(decoded.raw) > maximum_size:
                return (f"the broker sent a {decoded.name} of {len(decoded.raw)} bytes to a client whose CONNECT "
                        f"said Maximum Packet Size {maximum_size} — {statement_text('MQTT-3.1.2-24', version)}; "
                        f"first bytes: {decoded.raw[:32].hex(' ')} ...")
            if packet is not None and packet.name == "PUBLISH" and packet.qos > 0 and packet.packet_id is not None:
                in_flight.add(packet.packet_id)
                if receive_maximum and len(in_flight) > receive_maximum:
                    return (f"the broker had {len(in_flight)} unacknowledged QoS 1/2 PUBLISHes in flight to a client "
                            f"whose Receive Maximum is {receive_maximum} — {statement_text('MQTT-3.3.4-9', version)}")
    return None


def _qos_raised(sessions, version: str) -> str | None:
    """The broker forwarded a message at a higher QoS than it was published with (the minimum of the
    published QoS and the granted QoS is the most it may use)."""
    published = {}
    for session in sessions:
        for decoded in session.packets():
            if decoded.direction is CLIENT and decoded.packet is not None and decoded.packet.name == "PUBLISH":
                published.setdefault((decoded.packet.topic, decoded.packet.payload), decoded)
    for session in sessions:
        for decoded in session.packets():
            packet = decoded.packet
            if decoded.direction is CLIENT or packet is None or packet.name != "PUBLISH":
                continue
            original = published.get((packet.topic, packet.payload))
            if original is not None and packet.qos > original.packet.qos:
                rule = statement_text("MQTT-3.8.4-8", version) if version == "5.0" else \
                    "3.1.1 §3.8.4 (the QoS of a forwarded message is the minimum of the published and the granted QoS)"
                return (f"the broker forwarded a QoS {original.packet.qos} message at QoS {packet.qos} — {rule}; "
                        f"published: {original.raw[:40].hex(' ')}; forwarded: {decoded.raw[:40].hex(' ')}")
    return None


def attribute(record: dict, sessions) -> str:
    version = record.get("mqtt_version", "5.0")
    for session in sessions:
        for decoded in session.packets():
            if decoded.packet is None and decoded.error:
                who = "the client library" if decoded.direction is CLIENT else "the broker"
                rule = ""
                if "[MQTT-" in decoded.error:
                    statement = decoded.error.rsplit("[", 1)[1].rstrip("]")
                    rule = " — " + statement_text(statement, version)
                return (f"{who} sent bytes the codec refuses: {decoded.error}{rule}; bytes: "
                        f"{decoded.raw[:64].hex(' ')}{' ...' if len(decoded.raw) > 64 else ''}")
    for check in (_acknowledgement_mismatch, _client_limits_exceeded, _qos_raised):
        found = check(sessions, version)
        if found:
            return found
    sent, forwarded = [], []
    for session in sessions:
        for decoded in session.packets():
            if decoded.packet is not None and decoded.packet.name == "PUBLISH":
                (sent if decoded.direction is CLIENT else forwarded).append(summary(decoded))
    rule = statement_text(record.get("statement"), version)
    flow = (f"on the wire: {len(sent)} PUBLISH client -> broker, {len(forwarded)} PUBLISH broker -> client"
            + (f"; first sent: {sent[0]}" if sent else "") + (f"; first forwarded: {forwarded[0]}" if forwarded else ""))
    if forwarded and len(forwarded) >= len(sent) and record.get("reason", "").startswith("received []"):
        flow += "; the broker forwarded the message(s), so the client library did not report them"
    if not rule:
        return f"no packet breaks a codec rule; {flow}"
    return f"the check enforces {rule}; no packet breaks a codec rule; {flow}"

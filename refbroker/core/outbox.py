"""The one way out of the core: packets to send and connections to close, as actions for the host.

`send(conn, packet)` encodes a packet for its connection and queues a `Send` action, after fitting it
to what the client asked for:

- 5.0 Request Problem Information 0: no Reason String or User Property on anything but PUBLISH,
  CONNACK and DISCONNECT [MQTT-3.1.2-29];
- the broker's own topic aliases, when it gives the client any (topic_aliases.py);
- the client's Maximum Packet Size [MQTT-3.1.2-24]: an acknowledgement loses its Reason String and
  User Properties first [MQTT-3.2.2-19/20], [MQTT-3.4.2-2/3]; a PUBLISH that is too large is not sent
  and `send` says so (`SendResult.TOO_LARGE`): what that means for the message is the router's call.

`close(conn, reason)` queues a `Close`; `pause_reading`, `resume_reading` and `process_later` queue
what flow_control.py decides about reading a connection. `failure_properties` are the properties of a
5.0 failure answer (a Reason String only with `reason_strings true`). The broker's entry points return
`take()`: every action queued since, in order.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import MQTT_3_1_1, MQTT_5, Connack, Disconnect, Packet, Properties, Publish
from . import packet_log
from .actions import Action, Close, ConnectionId, PauseReading, ProcessLater, ResumeReading, Send
from .connection import Connection
from .counters import Counters
from .settings import Settings
from .states import CLOSED


# PUBLISH encodings kept for reuse (_encode): only for payloads up to TEMPLATE_PAYLOAD_LIMIT bytes (larger
# ones cost their copy anyway), and at most TEMPLATE_BYTES of them (then they start over)
TEMPLATE_PAYLOAD_LIMIT = 4096
TEMPLATE_BYTES = 256 * 1024


class SendResult(enum.Enum):
    SENT = "sent"
    TOO_LARGE = "too large"    # a PUBLISH above the client's Maximum Packet Size: not sent [MQTT-3.1.2-25]
    NOT_SENT = "not sent"      # the connection is closed, or even a stripped packet is too large


class Outbox:
    def __init__(self, settings: Settings, counters: Counters, log: Callable[[str, str], None], debug: bool):
        self._settings = settings  # read only: reason_strings
        self._counters = counters
        self._log = log
        self._debug = debug  # log every packet, as mosquitto -v does
        self._actions: list[Action] = []
        self._templates: dict[tuple, _Template] = {}  # recent PUBLISH encodings, see _encode
        self._template_bytes = 0  # what they hold

    def send(self, conn: Connection, packet: Packet) -> SendResult:
        if conn.state is CLOSED:
            return SendResult.NOT_SENT
        version = conn.version or MQTT_3_1_1
        is_publish = type(packet) is Publish
        if version == MQTT_5 and not conn.problem_information and not isinstance(packet, (Publish, Connack,
                                                                                         Disconnect)):
            # Request Problem Information 0: no Reason String or User Property here [MQTT-3.1.2-29]
            packet = _without_optional_properties(packet)
        new_alias = False
        if is_publish and conn.mount_point and packet.topic.startswith(conn.mount_point):
            # The listener's mount_point is taken off the topic on the way out
            packet = dataclasses.replace(packet, topic=packet.topic[len(conn.mount_point):])
        if is_publish and conn.outbound_aliases is not None:
            packet, new_alias = conn.outbound_aliases.apply(packet)
        data = self._encode(packet, version)
        limit = conn.maximum_packet_size
        if limit is not None and len(data) > limit:
            if is_publish:
                if new_alias:
                    conn.outbound_aliases.forget(packet.topic)
                return SendResult.TOO_LARGE
            # Reason String and User Properties go first [MQTT-3.2.2-19/20], [MQTT-3.4.2-2/3] ...
            packet = _without_optional_properties(packet)
            data = packet.encode(version)
            if len(data) > limit:
                return SendResult.NOT_SENT  # never send more than the client allows [MQTT-3.1.2-24]
        if self._debug:
            self._log("debug", packet_log.describe(packet, conn.name, received=False))
        counters = self._counters
        counters.messages_sent += 1
        counters.bytes_sent += len(data)
        if is_publish:
            counters.publish_sent += 1
            counters.publish_bytes_sent += len(packet.payload)
        self._actions.append(Send(conn.id, packet, data))
        return SendResult.SENT

    def log_packets(self, on: bool) -> None:
        """Log every packet sent (debug), or stop (the log settings were reloaded)."""
        self._debug = on

    def close(self, conn: Connection, reason: str) -> None:
        """Ask the host to close the network connection, after what was sent before."""
        self._actions.append(Close(conn.id, reason))

    def pause_reading(self, conn_id: ConnectionId) -> None:
        self._actions.append(PauseReading(conn_id))

    def resume_reading(self, conn_id: ConnectionId) -> None:
        self._actions.append(ResumeReading(conn_id))

    def process_later(self, conn_id: ConnectionId) -> None:
        self._actions.append(ProcessLater(conn_id))

    def failure_properties(self, conn: Connection, text: str) -> Properties:
        """Properties of a 5.0 failure answer: none, as mosquitto; a Reason String saying `text` with
        refbroker's `reason_strings true` (the caller logs the explanation either way)."""
        if conn.version == MQTT_5 and self._settings.reason_strings:
            return Properties(reason_string=text)
        return Properties()

    def take(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def _encode(self, packet: Packet, version: int) -> bytes:
        """The packet's bytes.

        Performance: a message routed to many subscribers becomes one PUBLISH per subscriber, all alike
        but for the packet identifier (same topic, payload, flags and properties: the very same objects),
        and they go out interleaved with other messages' copies when they wait in queues. So the bytes
        of recent PUBLISHes are kept, cut where the packet identifier goes (`_Template`), and reused.
        """
        if type(packet) is not Publish or len(packet.payload) > TEMPLATE_PAYLOAD_LIMIT:
            return packet.encode(version)
        key = (version, packet.topic, packet.qos, packet.retain, packet.dup, id(packet.payload), id(packet.properties))
        template = self._templates.get(key)
        if template is None:
            # The template holds the payload and properties, so their ids in the key stay theirs
            template = _Template(packet.payload, packet.properties, *packet.encode_around_packet_id(version))
            size = len(packet.payload) + len(template.before) + len(template.after)
            if self._template_bytes + size > TEMPLATE_BYTES:
                self._templates.clear()
                self._template_bytes = 0
            self._templates[key] = template
            self._template_bytes += size
        if packet.packet_id is None:
            return template.before
        return b"".join((template.before, packet.packet_id.to_bytes(2, "big"), template.after))


@dataclass(slots=True)
class _Template:
    """A PUBLISH encoded once, around its packet identifier (Publish.encode_around_packet_id)."""

    payload: bytes
    properties: Properties
    before: bytes
    after: bytes


def _without_optional_properties(packet: Packet) -> Packet:
    """The same acknowledgement without Reason String and User Properties."""
    properties = getattr(packet, "properties", None)
    if not properties or (properties.reason_string is None and not properties.user_properties):
        return packet
    stripped = properties.copy()
    stripped.reason_string = None
    stripped.user_properties = []
    return dataclasses.replace(packet, properties=stripped)

"""The MQTT wire format, sans-IO: packets, properties, reason codes, topics, and a stream decoder.

Nothing here opens a socket, starts a task or reads a clock. Every other part of the project
(the broker, the conformance suite, the pcap tools) builds and parses packets through this package.
"""

from .errors import MalformedPacket, MQTTError, PacketTooLarge, ProtocolError, UnsupportedProtocolVersion
from .packets import (
    MQTT_3_1,
    MQTT_3_1_1,
    MQTT_5,
    PACKET_CLASSES,
    PROTOCOL_NAMES,
    SUPPORTED_VERSIONS,
    VERSION_NAMES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    decode_packet,
)
from .properties import PROPERTY_TABLE, Properties, PropertyDefinition, PropertyType
from .reason_codes import ConnectReturnCode, ReasonCode
from .stream import StreamDecoder
from .topics import (
    InvalidTopicFilter,
    InvalidTopicName,
    is_shared_subscription,
    is_valid_topic_filter,
    split_shared_subscription,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)
from .trie import SubscriptionTrie

__all__ = [name for name in dir() if not name.startswith("_")]

"""paho-mqtt (2.x) behind the line protocol: one `paho.mqtt.client.Client` per connection, its network
loop in paho's own thread (`loop_start`), callbacks handed to the asyncio loop."""

from __future__ import annotations

import asyncio
import ssl
from importlib.metadata import version

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..python_driver import Inbox, text
from .common import Acknowledgements, ConnectionTable, given, outgoing

FEATURES = ["3.1.1", "5.0", "tls", "client_certificate", "websocket", "will", "will_delay", "session_expiry",
            "user_properties", "message_expiry", "topic_alias", "subscription_identifier", "response_topic",
            "correlation_data", "payload_format", "content_type", "receive_maximum", "maximum_packet_size",
            "connack_properties"]


OUT = {"user_properties": "UserProperty", "message_expiry": "MessageExpiryInterval", "topic_alias": "TopicAlias",
       "response_topic": "ResponseTopic", "correlation_data": "CorrelationData",
       "payload_format": "PayloadFormatIndicator", "content_type": "ContentType", "will_delay": "WillDelayInterval",
       "session_expiry": "SessionExpiryInterval", "receive_maximum": "ReceiveMaximum",
       "maximum_packet_size": "MaximumPacketSize", "subscription_identifier": "SubscriptionIdentifier"}


def to_properties(packet_type, values: dict | None) -> Properties | None:
    """paho's Properties for `packet_type` from a request's values (names paho has no attribute for are
    passed over)."""
    if not values:
        return None
    properties = Properties(packet_type)
    for key, value in values.items():
        if key in OUT:
            setattr(properties, OUT[key], outgoing(key, value))
    return properties


def from_properties(properties) -> dict:
    if properties is None:
        return {}
    names = {"UserProperty": "user_properties", "MessageExpiryInterval": "message_expiry",
             "TopicAlias": "topic_alias", "ResponseTopic": "response_topic", "CorrelationData": "correlation_data",
             "PayloadFormatIndicator": "payload_format", "ContentType": "content_type",
             "SubscriptionIdentifier": "subscription_identifier", "ReceiveMaximum": "receive_maximum",
             "MaximumPacketSize": "maximum_packet_size", "TopicAliasMaximum": "topic_alias_maximum",
             "MaximumQoS": "maximum_qos", "RetainAvailable": "retain_available",
             "SharedSubscriptionAvailable": "shared_subscription_available",
             "SubscriptionIdentifierAvailable": "subscription_identifier_available",
             "WildcardSubscriptionAvailable": "wildcard_subscription_available",
             "AssignedClientIdentifier": "assigned_client_identifier", "SessionExpiryInterval": "session_expiry",
             "ServerKeepAlive": "server_keep_alive"}
    result = {}
    for attribute, name in names.items():
        if hasattr(properties, attribute):
            value = getattr(properties, attribute)
            if isinstance(value, bytes):
                value = text(value)
            if attribute == "UserProperty":
                value = [list(pair) for pair in value]
            if attribute == "SubscriptionIdentifier" and not isinstance(value, list):
                value = [value]
            result[name] = value
    return result


class Connection:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.client: mqtt.Client | None = None
        self.inbox = Inbox()
        self.connected: asyncio.Future | None = None
        self.acks = Acknowledgements()  # paho's thread hands each SUBACK/UNSUBACK to the loop
        self.is_connected = False

    def resolve(self, future: asyncio.Future | None, value) -> None:
        if future is not None:
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(value))


class Adapter(ConnectionTable):
    async def op_hello(self):
        return {"library": "paho-mqtt", "version": version("paho-mqtt"), "features": FEATURES}

    async def op_connect(self, conn, host, port, version="3.1.1", transport="tcp", client_id="", clean=True,
                         keepalive=30, session_expiry=None, username=None, password=None, will=None, ca=None,
                         cert=None, key=None, receive_maximum=None, maximum_packet_size=None, timeout=10):
        loop = asyncio.get_running_loop()
        connection = await self.replace(conn, Connection(loop))
        v5 = version == "5.0"
        kwargs = {"callback_api_version": mqtt.CallbackAPIVersion.VERSION2, "client_id": client_id,
                  "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                  "transport": "websockets" if transport == "ws" else "tcp", "reconnect_on_failure": False}
        if not v5:
            kwargs["clean_session"] = clean
        client = connection.client = mqtt.Client(**kwargs)
        if transport == "ws":
            client.ws_set_options(path="/mqtt")
        if transport == "tls":
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        if username is not None:
            client.username_pw_set(username, password)
        if will:
            props = to_properties(PacketTypes.WILLMESSAGE, {"will_delay": will["delay"]} if will.get("delay") else None)
            client.will_set(will["topic"], will.get("payload", ""), will.get("qos", 0), will.get("retain", False),
                            properties=props)

        def on_connect(_client, _userdata, flags, reason_code, properties):
            connection.is_connected = not reason_code.is_failure
            connection.resolve(connection.connected, {
                "session_present": bool(flags.session_present), "reason_code": reason_code.value,
                "properties": from_properties(properties) if v5 else {}})

        def on_disconnect(_client, _userdata, _flags, reason_code, _properties):
            connection.is_connected = False
            connection.resolve(connection.connected, {"error": f"disconnected before CONNACK: {reason_code}"})

        def on_message(_client, _userdata, message):
            item = {"topic": message.topic, "payload": text(message.payload), "qos": message.qos,
                    "retain": bool(message.retain),
                    "properties": from_properties(getattr(message, "properties", None)) if v5 else {}}
            loop.call_soon_threadsafe(connection.inbox.put, item)

        def on_subscribe(_client, _userdata, mid, reason_codes, _properties):
            loop.call_soon_threadsafe(connection.acks.acknowledged, mid, [code.value for code in reason_codes])

        def on_unsubscribe(_client, _userdata, mid, _reason_codes, _properties):
            loop.call_soon_threadsafe(connection.acks.acknowledged, mid, True)

        client.on_connect, client.on_disconnect, client.on_message = on_connect, on_disconnect, on_message
        client.on_subscribe, client.on_unsubscribe = on_subscribe, on_unsubscribe
        connect_props = None
        if v5:
            connect_props = to_properties(PacketTypes.CONNECT, given(
                session_expiry=session_expiry, receive_maximum=receive_maximum,
                maximum_packet_size=maximum_packet_size))
        connection.connected = loop.create_future()
        if v5:
            await asyncio.to_thread(client.connect, host, port, keepalive, clean_start=clean, properties=connect_props)
        else:
            await asyncio.to_thread(client.connect, host, port, keepalive)
        client.loop_start()
        result = await asyncio.wait_for(connection.connected, timeout)
        if "error" in result:
            raise ConnectionError(result["error"])
        return result

    async def op_subscribe(self, conn, topic, qos=0, subscription_identifier=None, timeout=10):
        connection = self.get(conn)
        props = to_properties(PacketTypes.SUBSCRIBE, {"subscription_identifier": subscription_identifier}
                              if subscription_identifier else None)
        result, mid = connection.client.subscribe(topic, qos, properties=props)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"subscribe refused by the library: {mqtt.error_string(result)}")
        return {"granted": await asyncio.wait_for(connection.acks.expect(mid), timeout)}

    async def op_unsubscribe(self, conn, topic, timeout=10):
        connection = self.get(conn)
        result, mid = connection.client.unsubscribe(topic)
        await asyncio.wait_for(connection.acks.expect(mid), timeout)
        return {}

    async def op_publish(self, conn, topic, payload="", qos=0, retain=False, properties=None, timeout=10):
        connection = self.get(conn)
        props = to_properties(PacketTypes.PUBLISH, properties)
        info = connection.client.publish(topic, payload.encode(), qos, retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish refused by the library: {mqtt.error_string(info.rc)}")
        await asyncio.to_thread(info.wait_for_publish, timeout)
        if not info.is_published():
            raise TimeoutError(f"the QoS {qos} flow did not complete within {timeout} s")
        return {}

    async def op_status(self, conn):
        connection = self.connections.get(conn)
        return {"connected": bool(connection and connection.client and connection.client.is_connected())}

    async def release(self, old: Connection) -> None:
        """A new `connect` under the same name only stops the old client's network thread."""
        if old.client is not None:
            old.client.loop_stop()

    async def close(self, connection: Connection) -> None:
        if connection.client is not None:
            try:
                connection.client.disconnect()
                await asyncio.to_thread(connection.client.loop_stop)
            except Exception:  # noqa: BLE001 - closing anyway
                pass

    async def op_disconnect(self, conn):
        """Unlike `close`, a failing DISCONNECT is the answer here."""
        connection = self.get(conn)
        connection.client.disconnect()
        await asyncio.to_thread(connection.client.loop_stop)
        connection.client = None
        return {}

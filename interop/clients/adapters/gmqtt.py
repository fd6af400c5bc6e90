"""gmqtt behind the line protocol: one `gmqtt.Client` per connection on the driver's asyncio loop.

gmqtt has no WebSocket transport, and its `publish` gives no completion signal: the adapter answers
once the packet is written (the library's own retry queue handles the acknowledgement). Its automatic
reconnection is switched off, so a lost connection stays lost until the scenario connects again.
"""

from __future__ import annotations

import asyncio
import ssl
from importlib.metadata import version

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from ..python_driver import Inbox, text
from .common import Acknowledgements, ConnectionTable, given, outgoing

FEATURES = ["3.1.1", "5.0", "tls", "client_certificate", "will", "will_delay", "session_expiry",
            "user_properties", "message_expiry", "topic_alias", "subscription_identifier", "response_topic",
            "correlation_data", "payload_format", "content_type", "receive_maximum", "maximum_packet_size",
            "connack_properties"]

OUT = {"user_properties": "user_property", "message_expiry": "message_expiry_interval",
       "topic_alias": "topic_alias", "response_topic": "response_topic", "correlation_data": "correlation_data",
       "payload_format": "payload_format_id", "content_type": "content_type"}
IN = {"user_property": "user_properties", "message_expiry_interval": "message_expiry",
      "response_topic": "response_topic", "correlation_data": "correlation_data",
      "payload_format_id": "payload_format", "content_type": "content_type",
      "subscription_identifier": "subscription_identifier", "receive_maximum": "receive_maximum",
      "maximum_packet_size": "maximum_packet_size", "topic_alias_maximum": "topic_alias_maximum",
      "max_qos": "maximum_qos", "retain_available": "retain_available",
      "shared_subscription_available": "shared_subscription_available",
      "sub_id_available": "subscription_identifier_available",
      "wildcard_subscription_available": "wildcard_subscription_available",
      "assigned_client_identifier": "assigned_client_identifier", "session_expiry_interval": "session_expiry"}


def to_kwargs(properties: dict | None) -> dict:
    return {OUT[key]: outgoing(key, value) for key, value in (properties or {}).items()}


def from_properties(properties: dict | None) -> dict:
    result = {}
    for key, value in (properties or {}).items():
        if key not in IN:
            continue
        if key == "user_property":
            result["user_properties"] = [[text(k), text(v)] for k, v in value]
            continue
        if key == "subscription_identifier":
            result["subscription_identifier"] = list(value)
            continue
        value = value[0] if isinstance(value, list) and value else value
        result[IN[key]] = text(value) if isinstance(value, (bytes, bytearray)) else value
    return result


class Connection:
    def __init__(self) -> None:
        self.client: gmqtt.Client | None = None
        self.inbox = Inbox()
        self.connack: asyncio.Future | None = None
        self.acks = Acknowledgements()
        self.connected = False


class Adapter(ConnectionTable):
    async def op_hello(self):
        return {"library": "gmqtt", "version": version("gmqtt"), "features": FEATURES}

    async def op_connect(self, conn, host, port, version="3.1.1", transport="tcp", client_id="", clean=True,
                         keepalive=30, session_expiry=None, username=None, password=None, will=None, ca=None,
                         cert=None, key=None, receive_maximum=None, maximum_packet_size=None, timeout=10):
        if transport == "ws":
            raise RuntimeError("gmqtt has no WebSocket transport")
        loop = asyncio.get_running_loop()
        connection = await self.replace(conn, Connection())
        properties = {}
        if version == "5.0":
            properties = given(session_expiry_interval=session_expiry, receive_maximum=receive_maximum,
                               maximum_packet_size=maximum_packet_size)
        will_message = None
        if will:
            extra = {"will_delay_interval": will["delay"]} if will.get("delay") else {}
            will_message = gmqtt.Message(will["topic"], will.get("payload", ""), qos=will.get("qos", 0),
                                         retain=will.get("retain", False), **extra)
        client = connection.client = gmqtt.Client(client_id, clean_session=clean, will_message=will_message,
                                                  **properties)
        client.set_config({"reconnect_retries": 0})
        if username is not None:
            client.set_auth_credentials(username, password)
        connection.connack = loop.create_future()

        def on_connect(_client, flags, rc, properties):
            connection.connected = True
            if not connection.connack.done():
                connection.connack.set_result({"session_present": bool(flags), "reason_code": rc,
                                               "properties": from_properties(properties) if version == "5.0" else {}})

        def on_message(_client, topic, payload, qos, properties):
            connection.inbox.put({"topic": topic, "payload": text(payload), "qos": qos,
                                  "retain": bool(properties.get("retain")),
                                  "properties": from_properties(properties) if version == "5.0" else {}})
            return 0

        def on_subscribe(_client, mid, qos, _properties):
            connection.acks.acknowledged(mid, list(qos))

        def on_unsubscribe(_client, mid, *_args):
            connection.acks.acknowledged(mid, True)

        def on_disconnect(_client, _packet, *_args):
            connection.connected = False

        client.on_connect, client.on_message, client.on_subscribe = on_connect, on_message, on_subscribe
        client.on_unsubscribe, client.on_disconnect = on_unsubscribe, on_disconnect
        context = False
        if transport == "tls":
            context = ssl.create_default_context(cafile=ca)
            if cert:
                context.load_cert_chain(cert, key)
        await asyncio.wait_for(client.connect(host, port, ssl=context, keepalive=keepalive,
                                              version=MQTTv50 if version == "5.0" else MQTTv311), timeout)
        return await asyncio.wait_for(connection.connack, timeout)

    async def op_subscribe(self, conn, topic, qos=0, subscription_identifier=None, timeout=10):
        connection = self.get(conn)
        extra = {"subscription_identifier": subscription_identifier} if subscription_identifier else {}
        mid = connection.client.subscribe(gmqtt.Subscription(topic, qos), **extra)
        return {"granted": await asyncio.wait_for(connection.acks.expect(mid), timeout)}

    async def op_unsubscribe(self, conn, topic, timeout=10):
        connection = self.get(conn)
        await asyncio.wait_for(connection.acks.expect(connection.client.unsubscribe(topic)), timeout)
        return {}

    async def op_publish(self, conn, topic, payload="", qos=0, retain=False, properties=None, timeout=10):
        connection = self.get(conn)
        connection.client.publish(topic, payload.encode(), qos=qos, retain=retain, **to_kwargs(properties))
        await asyncio.sleep(0)
        return {}

    async def op_status(self, conn):
        connection = self.connections.get(conn)
        return {"connected": bool(connection and connection.client and connection.client.is_connected)}

    async def close(self, connection: Connection) -> None:
        client, connection.client = connection.client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), 3)
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass

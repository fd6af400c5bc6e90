"""aiomqtt behind the line protocol: one `aiomqtt.Client` per connection, entered as its async context,
with a task that moves `client.messages` into the connection's inbox.

aiomqtt does not expose the CONNACK (Session Present, properties): `connect` answers with
`session_present: null` and the library lacks the `connack_properties` feature.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import aiomqtt
from paho.mqtt.packettypes import PacketTypes

from ..python_driver import Inbox, text
from .common import ConnectionTable, given
from .paho import from_properties, to_properties

FEATURES = ["3.1.1", "5.0", "tls", "client_certificate", "websocket", "will", "will_delay", "session_expiry",
            "user_properties", "message_expiry", "topic_alias", "subscription_identifier", "response_topic",
            "correlation_data", "payload_format", "content_type", "receive_maximum", "maximum_packet_size"]


class Connection:
    def __init__(self) -> None:
        self.client: aiomqtt.Client | None = None
        self.inbox = Inbox()
        self.reader: asyncio.Task | None = None
        self.connected = False


class Adapter(ConnectionTable):
    async def op_hello(self):
        return {"library": "aiomqtt", "version": version("aiomqtt"), "features": FEATURES}

    async def op_connect(self, conn, host, port, version="3.1.1", transport="tcp", client_id="", clean=True,
                         keepalive=30, session_expiry=None, username=None, password=None, will=None, ca=None,
                         cert=None, key=None, receive_maximum=None, maximum_packet_size=None, timeout=10):
        connection = await self.replace(conn, Connection())
        v5 = version == "5.0"
        options = {"identifier": client_id, "keepalive": keepalive, "timeout": timeout,
                   "protocol": aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
                   "username": username, "password": password}
        if v5:
            options["clean_start"] = clean
            options["properties"] = to_properties(PacketTypes.CONNECT, given(
                session_expiry=session_expiry, receive_maximum=receive_maximum,
                maximum_packet_size=maximum_packet_size))
        else:
            options["clean_session"] = clean
        if transport == "ws":
            options.update(transport="websockets", websocket_path="/mqtt")
        if transport == "tls":
            options["tls_params"] = aiomqtt.TLSParameters(ca_certs=ca, certfile=cert, keyfile=key)
        if will:
            props = to_properties(PacketTypes.WILLMESSAGE, {"will_delay": will["delay"]}) if will.get("delay") else None
            options["will"] = aiomqtt.Will(will["topic"], will.get("payload", ""), will.get("qos", 0),
                                           will.get("retain", False), props)
        client = connection.client = aiomqtt.Client(host, port, **options)
        await asyncio.wait_for(client.__aenter__(), timeout)
        connection.connected = True
        connection.reader = asyncio.create_task(self._read(connection, client, v5))
        return {"session_present": None, "reason_code": 0, "properties": {}}

    @staticmethod
    async def _read(connection: Connection, client: aiomqtt.Client, v5: bool) -> None:
        try:
            async for message in client.messages:
                connection.inbox.put({"topic": message.topic.value, "payload": text(message.payload),
                                      "qos": message.qos, "retain": bool(message.retain),
                                      "properties": from_properties(message.properties) if v5 else {}})
        except aiomqtt.MqttError:
            pass
        finally:
            connection.connected = False

    async def op_subscribe(self, conn, topic, qos=0, subscription_identifier=None, timeout=10):
        connection = self.get(conn)
        props = to_properties(PacketTypes.SUBSCRIBE, {"subscription_identifier": subscription_identifier}
                              if subscription_identifier else None)
        granted = await connection.client.subscribe(topic, qos, properties=props, timeout=timeout)
        return {"granted": [getattr(code, "value", code) for code in granted]}

    async def op_unsubscribe(self, conn, topic, timeout=10):
        await self.get(conn).client.unsubscribe(topic, timeout=timeout)
        return {}

    async def op_publish(self, conn, topic, payload="", qos=0, retain=False, properties=None, timeout=10):
        props = to_properties(PacketTypes.PUBLISH, properties)
        await self.get(conn).client.publish(topic, payload.encode(), qos, retain, properties=props, timeout=timeout)
        return {}

    async def op_status(self, conn):
        connection = self.connections.get(conn)
        return {"connected": bool(connection and connection.client and connection.connected)}

    async def close(self, connection: Connection) -> None:
        client, connection.client = connection.client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.__aexit__(None, None, None), 3)
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass
        if connection.reader is not None:
            connection.reader.cancel()

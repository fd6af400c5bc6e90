"""amqtt's client (`amqtt.client.MQTTClient`, MQTT 3.1.1 only) behind the line protocol.

Messages are pulled with `deliver_message` by a task per connection. amqtt does not expose the
CONNACK's Session Present flag (`session_present: null`); its automatic reconnection is switched off.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version

from amqtt.client import MQTTClient

from ..python_driver import Inbox, text
from .common import ConnectionTable

FEATURES = ["3.1.1", "tls", "client_certificate", "websocket", "will"]


class Connection:
    def __init__(self) -> None:
        self.client: MQTTClient | None = None
        self.inbox = Inbox()
        self.reader: asyncio.Task | None = None
        self.connected = False


class Adapter(ConnectionTable):
    async def op_hello(self):
        return {"library": "amqtt", "version": version("amqtt"), "features": FEATURES}

    async def op_connect(self, conn, host, port, version="3.1.1", transport="tcp", client_id="", clean=True,
                         keepalive=30, username=None, password=None, will=None, ca=None, cert=None, key=None,
                         timeout=10, **_ignored):
        if version != "3.1.1":
            raise RuntimeError("amqtt's client speaks MQTT 3.1.1 only")
        connection = await self.replace(conn, Connection())
        scheme = {"tcp": "mqtt", "tls": "mqtts", "ws": "ws"}[transport]
        credentials = f"{username}:{password}@" if username is not None else ""
        uri = f"{scheme}://{credentials}{host}:{port}" + ("/mqtt" if transport == "ws" else "")
        config = {"keep_alive": keepalive, "auto_reconnect": False, "cleansession": clean,
                  "connection": {"uri": uri}}
        if transport == "tls":
            config["connection"].update({"cafile": ca, **({"certfile": cert, "keyfile": key} if cert else {})})
        if will:
            config["will"] = {"topic": will["topic"], "message": will.get("payload", ""), "qos": will.get("qos", 0),
                              "retain": will.get("retain", False)}
        client = connection.client = MQTTClient(client_id=client_id, config=config)
        code = await asyncio.wait_for(client.connect(uri, cleansession=clean, cafile=ca if transport == "tls" else None),
                                      timeout)
        connection.connected = True
        connection.reader = asyncio.create_task(self._read(connection, client))
        return {"session_present": None, "reason_code": code or 0, "properties": {}}

    @staticmethod
    async def _read(connection: Connection, client: MQTTClient) -> None:
        try:
            while True:
                message = await client.deliver_message()
                if message is None:
                    continue
                connection.inbox.put({"topic": message.topic, "payload": text(message.data), "qos": message.qos,
                                      "retain": bool(message.retain), "properties": {}})
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the connection is gone
            connection.connected = False

    async def op_subscribe(self, conn, topic, qos=0, timeout=10, **_ignored):
        codes = await asyncio.wait_for(self.get(conn).client.subscribe([(topic, qos)]), timeout)
        return {"granted": list(codes)}

    async def op_unsubscribe(self, conn, topic, timeout=10):
        await asyncio.wait_for(self.get(conn).client.unsubscribe([topic]), timeout)
        return {}

    async def op_publish(self, conn, topic, payload="", qos=0, retain=False, properties=None, timeout=10):
        if properties:
            raise RuntimeError("amqtt's client has no MQTT 5 properties")
        await asyncio.wait_for(self.get(conn).client.publish(topic, payload.encode(), qos, retain), timeout)
        return {}

    async def op_status(self, conn):
        connection = self.connections.get(conn)
        if connection is None or connection.client is None or not connection.connected:
            return {"connected": False}
        reader = connection.reader
        return {"connected": reader is not None and not reader.done()}

    async def close(self, connection: Connection) -> None:
        client, connection.client = connection.client, None
        if connection.reader is not None:
            connection.reader.cancel()
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), 3)
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass

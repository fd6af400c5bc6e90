"""What a broker says about itself in a v5 CONNACK, read with the project's codec (independent of any
client library): Topic Alias Maximum, Receive Maximum, Maximum Packet Size, Maximum QoS, and the
"available" flags. Used by scenarios whose client library does not expose the CONNACK."""

from __future__ import annotations

import dataclasses
import socket
import time

from refbroker.protocol import MQTT_5, Connack, Connect, Disconnect, StreamDecoder


def v5_connack_properties(host: str, port: int, credentials: tuple[str, str] | None = None,
                          timeout: float = 3.0) -> dict | None:
    """The CONNACK's properties as a dict (absent ones left out); None if the broker refuses MQTT 5."""
    connect = Connect(client_id="interop-capabilities-probe", protocol_level=MQTT_5, clean_start=True, keep_alive=10)
    if credentials:
        connect = dataclasses.replace(connect, username=credentials[0], password=credentials[1].encode())
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(connect.encode())
            decoder = StreamDecoder(MQTT_5)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = sock.recv(4096)
                if not data:
                    return None
                for packet in decoder.feed(data):
                    if isinstance(packet, Connack):
                        if packet.reason_code == 0:
                            sock.sendall(Disconnect().encode(MQTT_5))
                            return {k: v for k, v in dataclasses.asdict(packet.properties).items()
                                    if v not in (None, [], ())}
                        return None
    except Exception:  # noqa: BLE001 - a broker without MQTT 5 may answer anything or close
        return None
    return None

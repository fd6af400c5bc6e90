"""Tiny TCP servers for harness tests: one that plays a script of bytes, one that fakes a broker."""

from __future__ import annotations

import socket
import struct
import threading
import time

from refbroker.protocol import (
    Connack,
    Connect,
    Disconnect,
    MQTTError,
    Pingreq,
    Pingresp,
    StreamDecoder,
    Suback,
    Subscribe,
)


class ScriptedServer:
    """Accepts one connection and runs `script(conn)` in a thread; `address` is (host, port)."""

    def __init__(self, script):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.script = script
        self.error: BaseException | None = None
        self.received = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                self.script(self, conn)
        except BaseException as exc:  # noqa: BLE001 - reported by the test through .error
            self.error = exc

    def read(self, conn: socket.socket, count: int, timeout: float = 5.0) -> bytes:
        """Read exactly `count` bytes from the client (failing after `timeout`)."""
        conn.settimeout(timeout)
        data = b""
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                break
            data += chunk
        self.received += data
        return data

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.listener.close()


def send_slowly(conn: socket.socket, data: bytes, chunk: int = 1, delay: float = 0.002) -> None:
    for start in range(0, len(data), chunk):
        conn.sendall(data[start:start + chunk])
        time.sleep(delay)


def reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class FakeBroker:
    """A minimal MQTT server for plugin tests: CONNACK, PINGRESP, SUBACK (granting the QoS asked),
    closes on DISCONNECT. Enough for the harness, nothing like a broker."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self.listener.getsockname()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def spec(self) -> str:
        return f"{self.host}:{self.port}"

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = StreamDecoder()
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    packets = decoder.feed(data)
                except MQTTError:
                    return
                for packet in packets:
                    version = decoder.version or 4
                    if isinstance(packet, Connect):
                        conn.sendall(Connack().encode(version))
                    elif isinstance(packet, Pingreq):
                        conn.sendall(Pingresp().encode(version))
                    elif isinstance(packet, Subscribe):
                        codes = [s.qos for s in packet.subscriptions]
                        conn.sendall(Suback(packet.packet_id, codes).encode(version))
                    elif isinstance(packet, Disconnect):
                        return

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.listener.close()

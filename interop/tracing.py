"""Every cell's plain-TCP connections go through a recording proxy; a cell that did not pass keeps the
trace and gets an attribution.

`CellTrace(broker)` hands out endpoints (`endpoint(transport)`): for TCP a `pcap.proxy.RecordingProxy`
in front of the broker (started on the first TCP connection of the cell), for TLS and WebSocket the
broker's listener itself (a proxy there would see only encrypted bytes or WebSocket frames, which the
codec cannot decode). `finish(record, version)` adds, to a record that did not pass, the packets both
ways (`traces`, the report's trace format) and what they show (`attribution`, interop/attribution.py).
`save(path)` writes the cell's plain-TCP sessions as a pcapng capture (pcap's reference corpus keeps the
cells' conversations with real mosquitto versions: `python -m pcap corpus build`). `close()` stops the proxy.
"""

from __future__ import annotations

from pcap.proxy import RecordingProxy
from pcap.session import CLIENT

from .attribution import attribute, summary

#: most packets kept per session in a results file (the pcapng-free trace of the report)
MAX_PACKETS = 200


class CellTrace:
    def __init__(self, broker):
        self.broker = broker
        self.proxy: RecordingProxy | None = None

    def endpoint(self, transport: str) -> tuple[str, int]:
        if transport == "tcp":
            if self.proxy is None:
                self.proxy = RecordingProxy(self.broker.address).start()
            return self.proxy.address
        address = {"tls": self.broker.tls_address, "mtls": self.broker.mtls_address,
                   "ws": self.broker.websocket_address}.get(transport)
        if address is None:
            raise ValueError(f"the broker has no {transport} listener")
        return address

    def client_disconnect_codes(self) -> list[int]:
        """Reason codes of the DISCONNECTs the client library sent so far (0 for a 3.1.1 DISCONNECT)."""
        if self.proxy is None:
            return []
        codes = []
        for session in self.proxy.sessions():
            for decoded in session.packets():
                if decoded.direction is CLIENT and decoded.packet is not None and decoded.packet.name == "DISCONNECT":
                    codes.append(getattr(decoded.packet, "reason_code", 0) or 0)
        return codes

    def finish(self, record: dict, version: str) -> None:
        if record["outcome"] == "pass" or self.proxy is None:
            if record["outcome"] != "pass" and self.proxy is None:
                record["attribution"] = ("no packet trace: the cell failed before any plain-TCP connection "
                                         "(TLS and WebSocket connections are not recorded)")
            return
        self.proxy.wait_closed(timeout=0.5)
        sessions = self.proxy.sessions()
        traces = []
        for session in sessions:
            packets = []
            for decoded in session.packets()[:MAX_PACKETS]:
                packets.append({"t": decoded.time, "dir": "out" if decoded.direction is CLIENT else "in",
                                "type": decoded.name, "summary": summary(decoded), "hex": decoded.raw.hex()})
            client_id = next((d.packet.client_id for d in session.packets()
                              if d.packet is not None and d.packet.name == "CONNECT"), "")
            traces.append({"client": f"connection {session.number}", "client_id": client_id, "packets": packets,
                           "notes": list(session.notes)})
        record["traces"] = traces
        record["attribution"] = attribute(record, sessions)

    def save(self, path) -> int:
        """Write the plain-TCP sessions so far as a pcapng capture at `path`; how many there were."""
        if self.proxy is None:
            return 0
        self.proxy.wait_closed(timeout=0.5)
        sessions = self.proxy.sessions()
        if sessions:
            self.proxy.write_pcapng(path, sessions)
        return len(sessions)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

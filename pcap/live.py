"""Live capture on a network interface (root only): `python -m pcap record --live --interface lo`.

scapy sniffs the interface (a Linux packet socket, which needs root or CAP_NET_RAW) and keeps the TCP
frames to or from the given ports; they are written as they are (real headers, real sequence numbers)
to a pcapng file, which `explain` and `replay` read like any tcpdump capture. The port filter runs in the
kernel (a BPF program scapy compiles with libpcap, which tshark brings): on a busy interface a filter in
Python would fall behind and the kernel would drop frames. Without libpcap the filter runs in Python, and
the command says so.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["LiveCaptureError", "live_capture"]


class LiveCaptureError(Exception):
    """The capture cannot run (not root, unknown interface); the message says what to do."""


def live_capture(interface: str, ports: set[int], output: str | os.PathLike, *, stop: threading.Event,
                 duration: float | None = None, on_frame=None) -> int:
    """Capture until `stop` is set (or `duration` seconds have passed); returns the number of frames written.
    `on_frame(count, warning)` is called for each frame kept (warning None) and once with a warning."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise LiveCaptureError("live capture needs root (or CAP_NET_RAW); without it, use the recording proxy: "
                               "python -m pcap record --target HOST:PORT")
    import scapy.layers.inet  # noqa: F401 - registers the IP/TCP layers
    import scapy.layers.l2  # noqa: F401
    from scapy.layers.inet import TCP
    from scapy.sendrecv import AsyncSniffer
    from scapy.utils import PcapNgWriter

    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = PcapNgWriter(str(path))
    writer.linktype = 1  # Ethernet (Linux shows loopback as Ethernet too); set now so an empty file is valid
    written = 0
    lock = threading.Lock()

    def keep(frame) -> bool:
        return TCP in frame and (frame[TCP].sport in ports or frame[TCP].dport in ports)

    def store(frame) -> None:
        nonlocal written
        with lock:
            writer.write(frame)
            written += 1
        if on_frame is not None:
            on_frame(written, None)

    bpf = " or ".join(f"tcp port {port}" for port in sorted(ports))
    try:
        from scapy.arch.common import compile_filter

        compile_filter(bpf, iface=interface)
        options = {"filter": bpf}
    except Exception as error:  # noqa: BLE001 - no libpcap/tcpdump to compile the filter: filter in Python
        if on_frame is not None:
            on_frame(0, f"no BPF compiler ({error}); filtering in Python, a busy interface may lose frames")
        options = {"lfilter": keep}
    try:
        sniffer = AsyncSniffer(iface=interface, prn=store, store=False, **options)
        sniffer.start()
    except (OSError, ValueError) as error:
        writer.close()
        raise LiveCaptureError(f"cannot capture on interface {interface!r}: {error}") from None
    try:
        stop.wait(duration)
    finally:
        try:
            sniffer.stop()
        except Exception:  # noqa: BLE001 - the sniffer may have died on an interface error; its frames are kept
            pass
        with lock:
            writer.close()
    return written

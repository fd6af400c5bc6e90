"""`--capture-dir DIR`: keep one packet capture (pcapng) per test of the conformance suite.

With the option, the suite's clients connect to a recording proxy (`pcap.proxy.RecordingProxy`) that
forwards to the target, instead of to the target itself. After each test its TCP sessions are written
to `DIR/<test id>.pcapng` (Wireshark, `python -m pcap explain FILE`), and the results file records the
path under the test's `capture` key, so the report can link a failing test to its bytes. Tests whose
clients open no TCP connection (or only WebSocket ones, which the proxy does not see) get no file.

`--capture-port N` writes the broker's port as N in the files (default 1883, the port Wireshark
dissects as MQTT without a "Decode As" rule); the real port is what the proxy forwarded to.

The plugin calls three functions: `add_options(group)`, `start(config, broker_session)` once the
target is up, and `finish_test(item)` after each test (returns the capture's path or None).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

__all__ = ["add_options", "capture_file_name", "finish_test", "start"]

_proxy_key = pytest.StashKey["object"]()
_SETTLE = 2.0  # seconds to let the sessions of a finished test close before writing its file


def add_options(group) -> None:
    group.addoption("--capture-dir", default=None, metavar="DIR",
                    help="keep one pcapng capture per test in DIR (the clients connect through a recording proxy)")
    group.addoption("--capture-port", default=1883, type=int, metavar="PORT",
                    help="broker port written in the captures (default 1883, which Wireshark dissects as MQTT)")


def capture_file_name(nodeid: str) -> str:
    """A file name for a test id: 'tests/test_x.py::test_y[v5.0]' -> 'test_x.test_y-v5.0.pcapng'.

    When the id has characters a file name cannot keep ('reply/+' and 'reply/#' would both become
    'reply-'), a short hash of the whole id keeps the names apart.
    """
    path, _, name = nodeid.partition("::")
    readable = f"{Path(path).stem}.{name}" if name else Path(path).stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", readable.replace("[", "-").replace("]", "")).strip("-")
    if re.sub(r"[\[\]]", "", readable).replace("-", "") != safe.replace("-", ""):
        safe += "-" + hashlib.sha1(nodeid.encode()).hexdigest()[:6]
    return f"{safe}.pcapng"


def start(config: pytest.Config, broker_session) -> None:
    """With --capture-dir: put a recording proxy in front of the target and point the tests at it."""
    directory = config.getoption("--capture-dir")
    if not directory:
        return
    try:
        from pcap.proxy import RecordingProxy
    except ImportError as exc:  # scapy is needed to write the files
        raise pytest.UsageError(f"--capture-dir needs the pcap tools and scapy: pip install scapy ({exc})") from None
    proxy = RecordingProxy((broker_session.host, broker_session.port)).start()
    config.add_cleanup(proxy.stop)
    config.stash[_proxy_key] = proxy
    broker_session.host, broker_session.port = proxy.address


def finish_test(item: pytest.Item) -> str | None:
    """Write the test's sessions to its capture file; the file's path, or None without a capture."""
    proxy = item.config.stash.get(_proxy_key, None)
    if proxy is None:
        return None
    proxy.wait_closed(_SETTLE)
    sessions = proxy.take_sessions()
    if not sessions:
        return None
    directory = Path(item.config.getoption("--capture-dir"))
    if not directory.is_absolute():
        directory = Path(item.config.invocation_params.dir) / directory
    path = directory / capture_file_name(item.nodeid)
    proxy.write_pcapng(path, sessions, server_port=item.config.getoption("--capture-port"))
    return str(path)

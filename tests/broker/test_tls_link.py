"""refbroker's TLS (server/tls.py TlsLink) under clients that leave at once: what the broker sends to
others because of that client (its will) still goes out. Found by the suite over --transport tls: a
client that sent DISCONNECT 0x04 and closed its socket at once made the end of its TLS connection fail,
and the will for the watcher was lost with it."""

from __future__ import annotations

import pytest

from conformance.client import RawClient
from conformance.targets import RefbrokerTarget
from refbroker.protocol import Will


@pytest.fixture(scope="module")
def target():
    target = RefbrokerTarget()
    target.start()
    yield target
    target.cleanup()


@pytest.mark.parametrize("transport", ["tls", "wss"])
def test_a_will_sent_with_disconnect_reaches_the_watcher_when_the_client_leaves_at_once(target, transport):
    watcher = RawClient(version=5, endpoint=target.endpoint("tcp"), client_id=f"watcher-{transport}")
    watcher.connect()
    watcher.subscribe((f"will/{transport}/#", 1))
    for number in range(40):
        leaving = RawClient(version=5, endpoint=target.endpoint(transport), client_id=f"leaving-{number}")
        leaving.connect(will=Will(f"will/{transport}/{number}", b"bye", qos=1))
        leaving.disconnect(reason_code=0x04)  # Disconnect with Will Message, then the socket is closed at once
        will = watcher.expect_publish(timeout=3.0)
        assert will.topic == f"will/{transport}/{number}"
    watcher.disconnect()

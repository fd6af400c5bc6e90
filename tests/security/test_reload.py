"""Rights that change while messages wait: the ACL file is rewritten and the broker reloads it (SIGHUP)
while alice's session is offline with a message queued; when she comes back she receives only what
the new ACL lets her read. On refbroker and on mosquitto.

    pytest tests/security/test_reload.py -q
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conformance.client import RawClient
from refbroker.auth.passwords import PasswordHash
from refbroker.protocol import MQTT_3_1_1

from .brokers import KINDS, BrokerProcess, free_ports

PASSWORDS = {"alice": "alice-pw", "admin": "admin-pw"}


@pytest.fixture(params=KINDS)
def broker(request):
    directory = Path(tempfile.mkdtemp(prefix="security-reload-"))
    directory.chmod(0o755)
    try:
        (directory / "passwords").write_text("".join(f"{u}:{PasswordHash.create(p)}\n" for u, p in PASSWORDS.items()))
        (directory / "acl").write_text("user alice\ntopic readwrite alice/#\nuser admin\ntopic readwrite #\n")
        for path in directory.iterdir():
            path.chmod(0o644)
        (port,) = free_ports(1)
        config = (f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {directory / 'passwords'}\n"
                  f"acl_file {directory / 'acl'}\n")
        with BrokerProcess(request.param, config, directory / "run", wait_ports=[port]) as process:
            process.port, process.acl = port, directory / "acl"
            yield process
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def connect(broker, user: str, client_id: str, clean: bool = True) -> RawClient:
    client = RawClient("127.0.0.1", broker.port, MQTT_3_1_1, client_id=client_id, name=user)
    client.connect(username=user, password=PASSWORDS[user].encode(), clean_start=clean)
    return client


def test_queued_messages_follow_an_acl_reloaded_meanwhile(broker):
    session = f"alice-{uuid.uuid4().hex[:6]}"
    alice = connect(broker, "alice", session, clean=False)
    alice.subscribe(("alice/#", 1))
    alice.disconnect()
    admin = connect(broker, "admin", "admin")
    admin.publish("alice/private/x", b"queued under the old ACL", qos=1)
    broker.acl.write_text("user alice\ntopic readwrite alice/public/#\nuser admin\ntopic readwrite #\n")
    broker.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "Reloading config." not in broker.logs() and time.monotonic() < deadline:  # both log this line
        time.sleep(0.1)
    time.sleep(0.3)  # the line comes first, then the files are read
    alice = connect(broker, "alice", session, clean=False)
    assert alice.connack.session_present
    admin.publish("alice/public/y", b"allowed now", qos=1)
    payloads = [publish.payload for publish in alice.collect_publishes(2.0)]
    assert b"allowed now" in payloads, payloads
    assert b"queued under the old ACL" not in payloads, "a message queued under the old ACL went past the new one"

"""per_listener_settings, use_username_as_clientid, use_subject_as_username and crlfile: the same
config on refbroker and on mosquitto, the same behaviour seen from a client.

    pytest tests/security/test_listener_settings.py -q
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conformance.client import RawClient
from conformance.targets import find_mosquitto
from conformance.transports import Endpoint, open_stream
from refbroker.auth.passwords import PasswordHash
from refbroker.protocol import MQTT_3_1_1, MQTT_5, Connect, Disconnect
from refbroker.testserver.certificates import CertificateAuthority

from .brokers import KINDS, BrokerProcess, free_ports, require

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture(scope="module")
def files():
    directory = Path(tempfile.mkdtemp(prefix="security-listeners-"))
    directory.chmod(0o755)  # mosquitto started as root reads the files as user mosquitto
    ca = CertificateAuthority.create("listener settings test CA")
    ca.save(directory / "ca.crt", directory / "ca.key")
    ca.issue("localhost", hosts=["127.0.0.1", "localhost"]).save(directory / "server.crt", directory / "server.key")
    alice = ca.issue("alice", client=True, organization="Example", organizational_unit="Lab", country="GB")
    alice.save(directory / "alice.crt", directory / "alice.key")
    revoked = ca.issue("revoked", client=True)
    revoked.save(directory / "revoked.crt", directory / "revoked.key")
    (directory / "crl.pem").write_bytes(ca.revocation_list([revoked]))
    texts = {
        "passwords": "".join(f"{user}:{PasswordHash.create(password)}\n" for user, password in PASSWORDS.items()),
        "acl-alice": "user alice\ntopic readwrite alice/#\n",
        "acl-subject": "user CN=alice,OU=Lab,O=Example,C=GB\ntopic readwrite alice/#\n",
    }
    for name, text in texts.items():
        (directory / name).write_text(text)
    for path in directory.iterdir():
        path.chmod(0o644)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module", params=KINDS)
def broker(request, files):
    anonymous, users, by_name, subject, revocation = free_ports(5)
    config = f"""per_listener_settings true
# anonymous clients; no password file: a user name is only a label
listener {anonymous} 127.0.0.1
allow_anonymous true
# users only, with an ACL of their own
listener {users} 127.0.0.1
allow_anonymous false
password_file {files / 'passwords'}
acl_file {files / 'acl-alice'}
# the user name is the client id
listener {by_name} 127.0.0.1
allow_anonymous false
password_file {files / 'passwords'}
use_username_as_clientid true
# the client certificate's subject is the user name
listener {subject} 127.0.0.1
certfile {files / 'server.crt'}
keyfile {files / 'server.key'}
cafile {files / 'ca.crt'}
require_certificate true
use_subject_as_username true
allow_anonymous false
acl_file {files / 'acl-subject'}
# revoked client certificates are refused
listener {revocation} 127.0.0.1
certfile {files / 'server.crt'}
keyfile {files / 'server.key'}
cafile {files / 'ca.crt'}
require_certificate true
crlfile {files / 'crl.pem'}
allow_anonymous true
"""
    workdir = Path(tempfile.mkdtemp(prefix=f"security-{request.param}-"))
    workdir.chmod(0o755)
    ports = {"anonymous": anonymous, "users": users, "by_name": by_name, "subject": subject, "revocation": revocation}
    try:
        with BrokerProcess(request.param, config, workdir, wait_ports=list(ports.values())) as process:
            process.ports = ports
            yield process
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def client(broker, listener: str, *, user: str | None = None, password: str | None = None, client_id: str | None = None,
           version: int = MQTT_3_1_1, endpoint: Endpoint | None = None) -> tuple[RawClient, object]:
    made = RawClient("127.0.0.1", broker.ports[listener], version, endpoint=endpoint,
                     client_id=client_id if client_id is not None else f"c-{uuid.uuid4().hex[:8]}", name=user or listener)
    if password is None and user in PASSWORDS:
        password = PASSWORDS[user]
    connack = made.connect(username=user, password=password.encode() if password is not None else None,
                           expect_success=False)
    return made, connack


# ------------------------------------------------------------------------------------ per_listener_settings


def test_each_listener_has_its_own_authentication(broker):
    """The anonymous listener takes anyone (and any password: it has no password file); the users'
    listener refuses anonymous clients and wrong passwords."""
    assert client(broker, "anonymous")[1].reason_code == 0
    assert client(broker, "anonymous", user="alice", password="not-hers")[1].reason_code == 0
    assert client(broker, "users")[1].reason_code in (4, 5)
    assert client(broker, "users", user="alice", password="not-hers")[1].reason_code in (4, 5)
    assert client(broker, "users", user="alice")[1].reason_code == 0


def test_each_listener_has_its_own_acl(broker):
    """alice on the users' listener is held to its ACL (alice/# only); the same user name on the
    anonymous listener has no ACL at all."""
    topic = f"bob/{uuid.uuid4().hex[:8]}"
    observer, _ = client(broker, "anonymous")
    observer.subscribe((f"{topic}/#", 1))
    limited, _ = client(broker, "users", user="alice")
    limited.publish(f"{topic}/denied", b"denied", qos=1)
    unlimited, _ = client(broker, "anonymous", user="alice", password="")
    unlimited.publish(f"{topic}/allowed", b"allowed", qos=1)
    payloads = [p.payload for p in observer.collect_publishes(1.5)]
    assert payloads == [b"allowed"], payloads


@pytest.mark.parametrize("kind", KINDS)
def test_per_listener_settings_must_come_before_security_settings(kind, tmp_path, files):
    """Both refuse the config (mosquitto: 'per_listener_settings must be set before any other security
    settings'), and both accept it the other way round."""
    require(kind)
    wrong = tmp_path / "wrong.conf"
    wrong.write_text(f"password_file {files / 'passwords'}\nper_listener_settings true\nlistener 1883\n")
    right = tmp_path / "right.conf"
    right.write_text(f"per_listener_settings true\nlistener 1883\npassword_file {files / 'passwords'}\n")
    for config in (wrong, right):
        config.chmod(0o644)
    tmp_path.chmod(0o755)
    if kind == "refbroker":
        def check(config):
            return subprocess.run([sys.executable, "-m", "refbroker", "-c", str(config), "--test-config"],
                                  capture_output=True, text=True, timeout=30)
    else:
        def check(config):  # mosquitto has no --test-config: it would start; bind a port nobody listens on
            text = config.read_text().replace("listener 1883", f"listener {free_ports(1)[0]} 127.0.0.1")
            config.write_text(text)
            try:
                return subprocess.run([find_mosquitto(), "-c", str(config)], capture_output=True, text=True, timeout=2)
            except subprocess.TimeoutExpired as running:
                return subprocess.CompletedProcess(running.cmd, 0, "", "(started)")
    refused = check(wrong)
    assert refused.returncode != 0
    assert "per_listener_settings must be set before any other security settings" in refused.stdout + refused.stderr
    assert check(right).returncode == 0


# ------------------------------------------------------------------------------------ use_username_as_clientid


def test_the_user_name_is_the_client_id(broker):
    """Two connections of alice with different client ids are one client: the second takes the session
    over and the first is disconnected. A client without user name is not authorised."""
    first, connack = client(broker, "by_name", user="alice", client_id="phone")
    assert connack.reason_code == 0
    second, connack = client(broker, "by_name", user="alice", client_id="laptop")
    assert connack.reason_code == 0
    first.expect_disconnect(3.0)  # taken over: the client id of both was "alice"
    assert second.is_open(0.3)
    bob, connack = client(broker, "by_name", user="bob", client_id="phone")
    assert connack.reason_code == 0 and second.is_open(0.3), "bob's connection took over alice's"
    assert client(broker, "by_name")[1].reason_code in (4, 5)


def test_an_empty_client_id_is_assigned_the_user_name(broker):
    v5, connack = client(broker, "by_name", user="bob", client_id="", version=MQTT_5)
    assert connack.reason_code == 0
    assert connack.properties.assigned_client_identifier == "bob", connack


# ------------------------------------------------------------------------------------ use_subject_as_username


def test_the_certificate_subject_is_the_user_name(broker, files):
    """alice's certificate (C=GB, O=Example, OU=Lab, CN=alice) logs her in as
    'CN=alice,OU=Lab,O=Example,C=GB', the user the ACL names: she may use alice/# and nothing else."""
    endpoint = Endpoint("tls", "127.0.0.1", broker.ports["subject"], cafile=str(files / "ca.crt"),
                        certfile=str(files / "alice.crt"), keyfile=str(files / "alice.key"))
    alice, connack = client(broker, "subject", endpoint=endpoint, user="ignored", password="ignored")
    assert connack.reason_code == 0, connack
    alice.subscribe(("#", 1))
    alice.publish("alice/x", b"hers", qos=1)
    alice.publish("bob/x", b"not hers", qos=1)
    payloads = [p.payload for p in alice.collect_publishes(1.5)]
    assert payloads == [b"hers"], payloads
    deadline = time.monotonic() + 3
    while "CN=alice,OU=Lab,O=Example,C=GB" not in broker.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "u'CN=alice,OU=Lab,O=Example,C=GB'" in broker.logs()


# ------------------------------------------------------------------------------------------------- crlfile


def test_a_revoked_client_certificate_is_refused(broker, files):
    ca = str(files / "ca.crt")
    good = Endpoint("tls", "127.0.0.1", broker.ports["revocation"], cafile=ca, certfile=str(files / "alice.crt"),
                    keyfile=str(files / "alice.key"))
    with open_stream(good, timeout=5) as sock:
        sock.sendall(Connect(client_id="not-revoked").encode(MQTT_3_1_1))
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        sock.sendall(Disconnect().encode(MQTT_3_1_1))
    revoked = Endpoint("tls", "127.0.0.1", broker.ports["revocation"], cafile=ca, certfile=str(files / "revoked.crt"),
                       keyfile=str(files / "revoked.key"))
    with pytest.raises(ssl.SSLError) as refused, open_stream(revoked, timeout=5) as sock:
        if not sock.recv(4096):  # TLS 1.3: the server's verdict on our certificate comes after our handshake
            raise AssertionError("closed without an alert")
    assert "certificate revoked" in str(refused.value), refused.value
    # the broker's log: "certificate verify failed" (mosquitto: OpenSSL Error ... certificate verify failed;
    # refbroker: TLS handshake failed ...: certificate verify failed: certificate revoked)
    deadline = time.monotonic() + 3
    while "certificate verify failed" not in broker.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "certificate verify failed" in broker.logs(), broker.logs()[-1500:]

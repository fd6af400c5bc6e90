"""Real mosquitto releases in Docker: bookworm 2.0.11, trixie 2.0.21, sid 2.1.2.

Each known image is built on first use (session scoped: a minute or so each, with debootstrap), started
as a DockerMosquittoTarget, and spoken to over a raw socket with the project's own codec: CONNECT in
3.1.1 and 5.0, a QoS 1 round trip, and the version it reports.

Without Docker these tests are skipped with one message saying what to install. Set
MQTT_TOOLKIT_REQUIRE_DOCKER=1 to make that an error instead (for CI, where a skip would hide a
missing install step).
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from refbroker.protocol import (
    MQTT_3_1_1,
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Puback,
    Publish,
    StreamDecoder,
    Suback,
    Subscribe,
    Subscription,
)

from ..docker_support import engine_or_skip

pytestmark = pytest.mark.docker

VERSIONS = {"3.1.1": MQTT_3_1_1, "5.0": MQTT_5}


# ------------------------------------------------------------------------------------ a raw client


class RawClient:
    """Just enough of a client for these checks: send packets, read whole packets back."""

    def __init__(self, address: tuple[str, int], version: int, timeout: float = 5.0):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection(address, timeout=timeout)
        self.decoder = StreamDecoder(version)
        self.pending: list[Packet] = []

    def send(self, packet: Packet) -> None:
        self.sock.sendall(packet.encode(self.version))

    def receive(self) -> Packet:
        deadline = time.monotonic() + self.timeout
        while not self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError("no packet from the broker")
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self.pending.extend(self.decoder.feed(data))
        return self.pending.pop(0)

    def connect(self, client_id: str, **options) -> Connack:
        self.send(Connect(client_id=client_id, protocol_level=self.version, **options))
        connack = self.receive()
        assert isinstance(connack, Connack), f"expected CONNACK, got {connack!r}"
        return connack

    def close(self) -> None:
        try:
            self.send(Disconnect())
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def docker_engine():
    engine = engine_or_skip()
    yield engine
    engine.stop()


@pytest.fixture(scope="session", params=["bookworm", "trixie", "sid"])
def image(request, docker_engine):
    """The ImageSpec of one known image, built now if the engine does not have it yet."""
    from interop.images import IMAGES, build_image

    spec = IMAGES[request.param]
    result = build_image(spec.suite, engine=docker_engine)
    if not result.skipped:
        print(f"built {result.tag} in {result.seconds:.0f} s ({result.size_bytes / 2**20:.0f} MiB)")
    return spec


@pytest.fixture(scope="session")
def target(image, docker_engine):
    """One running container per image, shared by the tests of that image (each uses its own client ids)."""
    from interop.docker_target import DockerMosquittoTarget

    broker = DockerMosquittoTarget(image.tag, engine=docker_engine, build_missing=False)
    broker.start()
    yield broker
    broker.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("version_name", VERSIONS)
def test_connect_is_accepted(target, version_name):
    client = RawClient(target.address, VERSIONS[version_name])
    try:
        connack = client.connect(unique("connect"), clean_start=True)
    finally:
        client.close()
    assert connack.reason_code == 0
    assert connack.session_present is False


@pytest.mark.parametrize("version_name", VERSIONS)
def test_qos1_round_trip(target, version_name):
    version = VERSIONS[version_name]
    topic = f"mqtt-toolkit/{unique('qos1')}"
    subscriber = RawClient(target.address, version)
    publisher = RawClient(target.address, version)
    try:
        assert subscriber.connect(unique("sub")).reason_code == 0
        subscriber.send(Subscribe(7, [Subscription(topic, qos=1)]))
        suback = subscriber.receive()
        assert isinstance(suback, Suback) and suback.packet_id == 7
        assert suback.reason_codes == [1]  # granted QoS 1

        assert publisher.connect(unique("pub")).reason_code == 0
        publisher.send(Publish(topic, b"hello from the toolkit", qos=1, packet_id=42))
        puback = publisher.receive()
        assert isinstance(puback, Puback) and puback.packet_id == 42 and puback.reason_code == 0

        delivered = subscriber.receive()
        assert isinstance(delivered, Publish)
        assert (delivered.topic, delivered.payload, delivered.qos) == (topic, b"hello from the toolkit", 1)
        assert delivered.packet_id is not None
        subscriber.send(Puback(delivered.packet_id))
    finally:
        publisher.close()
        subscriber.close()


def test_version_string_names_the_release(target, image):
    assert target.version_string == f"mosquitto {image.mosquitto_version} (docker {image.suite})"
    assert f"mosquitto version {image.mosquitto_version} running" in target.logs()


def test_image_is_labelled(docker_engine, image):
    from interop.images import LABEL_PACKAGE, LABEL_SUITE, LABEL_VERSION, find_image

    labels = find_image(docker_engine, image.tag).labels
    assert labels[LABEL_SUITE] == image.suite
    assert labels[LABEL_VERSION] == image.mosquitto_version
    assert labels[LABEL_PACKAGE].split(":")[-1].startswith(image.mosquitto_version + "-")


def test_stop_removes_the_container_and_keeps_the_log(image, docker_engine):
    import docker.errors

    from interop.docker_target import DockerMosquittoTarget

    broker = DockerMosquittoTarget(image.tag, engine=docker_engine, build_missing=False)
    broker.start()
    container_id = broker.container.id
    host, port = broker.address
    assert host == "127.0.0.1"
    broker.stop()
    with pytest.raises(docker.errors.NotFound):
        docker_engine.client.containers.get(container_id)
    assert f"mosquitto version {image.mosquitto_version} terminating" in broker.logs()
    broker.stop()  # a second stop is harmless

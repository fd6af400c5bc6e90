"""Broker targets: option parsing, profiles, errors, and the known-deviation table."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.client import HarnessError
from conformance.deviations import DEVIATIONS, applies, parse_mosquitto_version
from conformance.targets import (
    HostPortTarget,
    MosquittoTarget,
    RefbrokerTarget,
    free_port,
    load_profile,
    parse_host_port,
    target_from_option,
)


@pytest.mark.parametrize("text", [None, "", "refbroker", " refbroker "])
def test_default_and_refbroker(text):
    target = target_from_option(text)
    assert isinstance(target, RefbrokerTarget) and target.name == "refbroker"


def test_mosquitto_forms():
    target = target_from_option("mosquitto")
    assert isinstance(target, MosquittoTarget) and target.name == "mosquitto"
    explicit = target_from_option("mosquitto:/opt/mosq/sbin/mosquitto")
    assert isinstance(explicit, MosquittoTarget) and explicit.binary == "/opt/mosq/sbin/mosquitto"


def test_missing_mosquitto_binary_fails_at_start_not_at_parse():
    target = target_from_option("mosquitto:/nonexistent/mosquitto")
    assert target.version_string == "mosquitto (not installed)"
    with pytest.raises(HarnessError, match="does not exist or is not executable"):
        target.start()


@pytest.mark.parametrize("text,expected", [
    ("localhost:1883", ("localhost", 1883)),
    ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ("[::1]:8883", ("::1", 8883)),
    ("broker.example:1", ("broker.example", 1)),
])
def test_host_port(text, expected):
    target = target_from_option(text)
    assert isinstance(target, HostPortTarget)
    assert target.address == expected
    assert target.version_string == "unknown"


@pytest.mark.parametrize("text,message", [
    ("bogus", "unknown --broker 'bogus'"),
    ("host:notaport", "invalid port 'notaport'"),
    ("host:0", "invalid port '0'"),
    ("host:70000", "invalid port '70000'"),
    (":1883", "expected HOST:PORT"),
    ("mosquitto:", "needs the path"),
])
def test_invalid_options(text, message):
    with pytest.raises(ValueError, match=message):
        target_from_option(text)


def test_parse_host_port_rejects_missing_port():
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_host_port("localhost")


def test_host_port_target_not_listening_is_a_harness_error():
    target = HostPortTarget(f"127.0.0.1:{free_port()}", connect_timeout=0.3)
    with pytest.raises(HarnessError, match="did not accept connections"):
        target.start()


def test_refbroker_unavailable_is_reported_clearly(monkeypatch):
    monkeypatch.setitem(sys.modules, "refbroker.embedded", None)  # makes the import fail
    before = set(Path(tempfile.gettempdir()).glob("conformance-refbroker-*"))
    target = RefbrokerTarget()
    with pytest.raises(HarnessError, match="refbroker is not available yet"):
        target.start()
    assert target.workdir is None and set(Path(tempfile.gettempdir()).glob("conformance-refbroker-*")) == before


#: per target kind: a working target, and one whose config makes the broker refuse to start
FOLDER_CASES = {
    "refbroker": (RefbrokerTarget, lambda: RefbrokerTarget(config=(("no_such_key", "1"),))),
    "mosquitto": (MosquittoTarget, lambda: MosquittoTarget(extra_config="no_such_key 1")),
}


@pytest.mark.parametrize("kind", FOLDER_CASES)
def test_a_target_that_fails_to_start_or_restarts_leaves_no_folder_behind(kind):
    if kind == "mosquitto" and shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed: apt-get install mosquitto")
    working, broken_target = FOLDER_CASES[kind]
    before = set(Path(tempfile.gettempdir()).glob(f"conformance-{kind}-*"))
    target = working()
    target.start()
    target.stop()
    target.start()  # a restart keeps its folder
    target.cleanup()
    broken = broken_target()
    with pytest.raises(HarnessError, match=f"{kind} did not start"):
        broken.start()
    assert broken.workdir is None
    assert set(Path(tempfile.gettempdir()).glob(f"conformance-{kind}-*")) == before


def test_profile_file(tmp_path):
    path = tmp_path / "profile.toml"
    path.write_text('[target]\nname = "edge"\nversion = "mosquitto 2.0.11"\n\n'
                    '[features]\nshared_subscriptions = false\n\n[deviations]\nknown = [13, 101]\n')
    profile = load_profile(path)
    assert profile.name == "edge" and profile.version == "mosquitto 2.0.11"
    assert profile.feature("shared_subscriptions") is False and profile.feature("retain") is None
    assert profile.known_deviations == {13, 101}
    target = target_from_option("127.0.0.1:1883", profile=profile)
    assert target.display_name() == "edge" and target.version_string == "mosquitto 2.0.11"


@pytest.mark.parametrize("text,message", [
    ("[features]\nteleport = true\n", "unknown feature 'teleport'"),
    ("[features]\nretain = 1\n", "must be true or false"),
    ("[deviations]\nknown = 'all'\n", "must be a list of numbers"),
    ("[colours]\n", "unknown section"),
    ("not toml at all = = =", "not valid TOML"),
    ("[credentials]\nusername = 'u'\n", "needs username and password"),
])
def test_bad_profiles(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_profile(path)


def test_profile_credentials_go_into_every_connect(tmp_path):
    """A broker that admits no anonymous client: the profile's pair is in each CONNECT the suite builds."""
    from conformance.client import RawClient
    from refbroker.protocol import MQTT_3_1_1, Connect

    path = tmp_path / "profile.toml"
    path.write_text('[credentials]\nusername = "suite"\npassword = "s3cret"\n')
    credentials = load_profile(path).credentials
    assert credentials == ("suite", "s3cret")
    client = RawClient.__new__(RawClient)  # no socket: only the CONNECT it would build
    client.client_id, client.version, client.credentials = "c1", MQTT_3_1_1, credentials
    packet = client.connect_packet(protocol_name="MQTX")
    assert (packet.username, packet.password, packet.protocol_name) == ("suite", b"s3cret", "MQTX")
    assert isinstance(packet, Connect)


def test_shipped_profiles_are_the_interop_brokers(tmp_path):
    """One place for profiles: every broker of the interop matrix has a shipped profile that loads."""
    from conformance.targets import shipped_profiles

    names = set(shipped_profiles())
    assert {"refbroker", "mosquitto", "mosquitto-2.0.11", "mosquitto-2.0.21", "mosquitto-2.1.2", "amqtt", "aedes",
            "rabbitmq", "ejabberd"} <= names
    for name in names:
        assert load_profile(name).path.endswith(f"{name}.toml")
    assert load_profile("rabbitmq").feature("qos2") is False
    assert load_profile("ejabberd").credentials is not None
    assert load_profile("mosquitto-2.0.21").version_string() == "mosquitto 2.0.21"


def test_missing_profile_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read target profile"):
        load_profile(tmp_path / "absent.toml")


@pytest.mark.parametrize("text,expected", [
    ("mosquitto 2.0.11", (2, 0, 11)),
    ("mosquitto 2.1", (2, 1, 0)),
    ("Mosquitto v2.0.21", (2, 0, 21)),
    ("refbroker 0.1.0", None),
    ("unknown", None),
])
def test_parse_mosquitto_version(text, expected):
    assert parse_mosquitto_version(text) == expected


def test_deviations_apply_by_version_or_profile():
    assert applies(13, "mosquitto 2.0.11") and not applies(13, "mosquitto 2.1.0")
    assert applies(1, "mosquitto 2.1.2") and not applies(1, "mosquitto 2.0.21")
    assert not applies(13, "refbroker 0.1.0")
    assert applies(13, "some broker", declared={13})


def test_deviation_table_is_well_formed():
    from conformance.catalogue import load_catalogue

    catalogue = load_catalogue()
    for number, deviation in DEVIATIONS.items():
        assert deviation.number == number
        assert deviation.reference and deviation.title and deviation.versions_text
        for key in deviation.statements:
            assert key in catalogue, f"deviation {number} names unknown statement {key}"
        if number > 100:  # found by this suite: the evidence must be written down
            # 3.1's specification has no capitalised MUST: its deviations quote the section instead
            quoted = "MUST" in deviation.evidence or (
                all(version == "3.1" for version, _ in deviation.statements) and "MQTT 3.1, section" in deviation.evidence)
            assert quoted and "Observed" in deviation.evidence

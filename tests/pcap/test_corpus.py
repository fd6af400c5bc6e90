"""The reference corpus (pcap/captures/): its manifest, tshark's verdict on every packet, a replay of the
2.0.11 captures against mosquitto 2.0.11 itself (the replay must see no difference there), and the
upgrade table (each version's captures against the later versions and refbroker), kept in
test-output/pcap-upgrade.json for the report (python -m reports build ... --upgrade-table FILE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.catalogue import load_catalogue
from pcap.corpus import VERSIONS, load_manifest, table_text, upgrade_table
from pcap.corpus_replay import replay_files
from pcap.reader import read_capture
from pcap.tshark import check_captures, find_tshark

from ..docker_support import engine_with_every_image

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "pcap" / "captures"
UPGRADE_TABLE = REPO / "test-output" / "pcap-upgrade.json"


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(CORPUS)


def test_manifest_describes_every_file(manifest):
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.pcapng.gz")}
    assert files == {entry["file"] for entry in manifest["captures"]}
    catalogue = load_catalogue()
    for version in VERSIONS:
        entries = [e for e in manifest["captures"] if e["version"] == version]
        assert len(entries) >= 200, f"mosquitto {version}: only {len(entries)} captures"
        info = manifest["versions"][version]
        assert info["captures"] == len(entries) and f"mosquitto {version}" in info["broker"]
        for excluded in info["excluded"] + info["interop"]["excluded"]:
            assert excluded["reason"].startswith("differs when replayed on its own version")
        # the interop matrix's conversations of real client libraries with this version
        interop = [e for e in entries if e.get("source") == "interop"]
        assert len(interop) == info["interop"]["captures"] >= 30, f"mosquitto {version}: {len(interop)} interop captures"
        assert {e["test"].split("/")[1].split("-")[0] for e in interop} >= {"paho", "gmqtt", "mosquitto"}
    for entry in manifest["captures"]:
        assert (CORPUS / entry["file"]).stat().st_size == entry["bytes"]
        assert entry["shows"] and entry["test"].startswith(
            "interop/" if entry.get("source") == "interop" else "conformance/tests/"), entry
        for statement in entry["statements"]:
            assert (entry["mqtt_version"], statement) in catalogue, (entry["file"], statement)
    total = sum(entry["bytes"] for entry in manifest["captures"])
    assert total < 3_000_000, f"the corpus is {total} bytes; it must stay small enough for git"


def test_every_capture_reads(manifest):
    for entry in manifest["captures"][::7]:  # a sample: the tshark test below reads them all
        capture = read_capture(CORPUS / entry["file"])
        assert len(capture.sessions) == entry["sessions"]
        assert sum(len(s.packets()) for s in capture.sessions) == entry["packets"]


@pytest.mark.skipif(find_tshark() is None, reason="tshark not installed: apt-get install tshark")
def test_tshark_agrees_with_our_decoder_on_every_packet_of_the_corpus(manifest):
    report = check_captures([CORPUS / entry["file"] for entry in manifest["captures"]])
    print(f"tshark over the corpus ({report.tshark_version}): {report.summary()}")
    assert report.problems() == [], "\n".join(f"{v.file} session {v.session} {v.direction} #{v.index + 1} "
                                               f"{v.name}: {v.outcome}: {v.detail}" for v in report.problems())
    counts = report.counts
    assert counts["agree"] > 0.95 * sum(counts.values())
    # Every refusal is our codec naming a rule the packet breaks; the corpus holds the suite's malformed packets.
    for verdict in report.verdicts:
        if verdict.outcome == "refused":
            assert verdict.detail.startswith("our codec: "), verdict


# ------------------------------------------------------------------------------------------ Docker


@pytest.fixture(scope="module")
def docker_engine():
    yield engine_with_every_image()


@pytest.mark.docker
def test_the_2_0_11_corpus_replays_identically_on_2_0_11(manifest, docker_engine):
    """The replay and its normalisation rules are sound: the captures of a version, replayed against that
    version, show no difference. (A capture that differs is replayed once more: a race between a test's
    own clients can still make one run differ, which the corpus build tries to exclude.)"""
    from conformance.targets import target_from_option

    entries = [e for e in manifest["captures"] if e["version"] == "2.0.11"]
    captures = [(CORPUS / e["file"], read_capture(CORPUS / e["file"])) for e in entries]
    target = target_from_option("docker:mosquitto-2.0.11")
    target.start()
    try:
        outcome = replay_files(captures, target.address)
        again = [(Path(f.path), read_capture(f.path)) for f in outcome.differing_files()]
        second = replay_files(again, target.address) if again else None
    finally:
        target.stop()
    still = second.differing_files() if second else []
    assert not still, second.text()
    assert len(outcome.differing_files()) <= 3, outcome.text()  # more than a stray race is a real problem


@pytest.mark.docker
def test_upgrade_table(manifest, docker_engine):
    table = upgrade_table(CORPUS, extra_targets=["refbroker"], progress=print)
    UPGRADE_TABLE.parent.mkdir(exist_ok=True)
    UPGRADE_TABLE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(table_text(table))
    pairs = [(pair["from"], pair["to"]) for pair in table["pairs"]]
    assert pairs == [("2.0.11", "docker:mosquitto-2.0.21"), ("2.0.11", "docker:mosquitto-2.1.2"),
                     ("2.0.21", "docker:mosquitto-2.1.2"), ("2.0.11", "refbroker")]
    for pair in table["pairs"]:
        expected = sum(1 for e in manifest["captures"] if e["version"] == pair["from"])
        assert pair["captures"] == expected
        assert pair["differing_captures"] == len(pair["differing"])
        assert sum(pair["kinds"].values()) == sum(sum(d["kinds"].values()) for d in pair["differing"])
    # The report renders the table as its own section.
    from reports.pcap_section import load_upgrade_table, render_upgrade_section
    html = render_upgrade_section(load_upgrade_table(UPGRADE_TABLE))
    assert 'id="upgrade-table"' in html and html.count("<tr>") == len(table["pairs"]) + 1

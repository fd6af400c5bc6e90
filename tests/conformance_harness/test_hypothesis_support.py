"""The suite's Hypothesis helpers, without a broker: profile selection, the suite's own topic matcher
(checked against the codec's), and the overlapping-subscription rules of `check_copies`."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import hypothesis_profiles as profiles
from conformance.strategies import topic_filters, topic_names
from conformance.tests.hypothesis_support import Matching, check_copies, is_deviation_104, topic_matches
from refbroker.protocol import Properties, Publish
from refbroker.protocol import topic_matches as codec_topic_matches

# ------------------------------------------------------------------------------------------ profiles


@pytest.mark.parametrize("env,expected", [
    ({}, "ci"),
    ({"HYPOTHESIS_PROFILE": "thorough"}, "thorough"),
    ({"HYPOTHESIS_PROFILE": "ci"}, "ci"),
    ({"HYPOTHESIS_PROFILE": "dev"}, "ci"),  # a project's own profile name is not ours
])
def test_profile_selection(monkeypatch, env, expected):
    """One scheme: HYPOTHESIS_PROFILE chooses the suite's profile."""
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert profiles.profile_name() == expected


def test_profiles_suit_network_tests(monkeypatch):
    for name in profiles.PROFILES:
        monkeypatch.setenv("HYPOTHESIS_PROFILE", name)
        chosen = profiles.suite_settings(max_examples=4)
        assert chosen.deadline is None and chosen.database is None
        assert chosen.max_examples == (4 if name == "ci" else 100)
    ci = settings.get_profile("mqtt-conformance-ci")
    thorough = settings.get_profile("mqtt-conformance-thorough")
    assert ci.max_examples < thorough.max_examples


def test_ci_profile_is_deterministic(monkeypatch):
    """Identical ci runs draw identical examples (derandomize); thorough runs are random, seeded by the plugin."""
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    assert profiles.is_derandomized()
    def run_once() -> list[str]:
        seen: list[str] = []

        @profiles.suite_settings(max_examples=5)
        @given(st.text(min_size=1))
        def draw(text):
            seen.append(text)

        draw()
        return seen

    drawn = [run_once(), run_once()]
    assert drawn[0] == drawn[1]
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "thorough")
    assert not profiles.is_derandomized()


# ------------------------------------------------------------------------------------- topic matcher

MATCH_TABLE = [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False), ("a/+", "a", False),
    ("a/+", "a/", True), ("a/#", "a", True), ("a/#", "a/b/c", True), ("#", "a", True), ("+/+", "/b", True),
    ("+", "/b", False), ("#", "$SYS/x", False), ("+/x", "$a/x", False), ("$a/#", "$a/x", True),
    ("a/+/c", "a/$b/c", True), ("A", "a", False),
]


@pytest.mark.parametrize("topic_filter,name,expected", MATCH_TABLE)
def test_topic_matches_table(topic_filter, name, expected):
    assert topic_matches(topic_filter, name) is expected


@settings(max_examples=300, deadline=None)
@given(topic_filters(levels=st.sampled_from(["a", "b", "", "$c"]), max_levels=4),
       topic_names(levels=st.sampled_from(["a", "b", "", "$c"]), max_levels=4))
def test_topic_matches_agrees_with_the_codec(topic_filter, name):
    assert topic_matches(topic_filter, name) == codec_topic_matches(topic_filter, name)


# ------------------------------------------------------------------------------- overlapping copies


def _copy(qos: int, *ids: int) -> Publish:
    return Publish("t", b"x", qos, packet_id=1 if qos else None, properties=Properties(subscription_identifiers=list(ids)))


@pytest.mark.parametrize("copies,publish_qos,matching,ok", [
    ([], 1, [], True),
    ([_copy(1)], 1, [], False),                                      # delivered without a subscription
    ([], 1, [Matching(1)], False),                                   # not delivered
    ([_copy(1)], 2, [Matching(1)], True),                            # min(2, 1)
    ([_copy(2)], 2, [Matching(1)], False),
    ([_copy(1)], 1, [Matching(0), Matching(2)], True),               # one copy at the highest QoS
    ([_copy(0)], 1, [Matching(0), Matching(2)], False),              # one copy, not at the highest
    ([_copy(0), _copy(1)], 1, [Matching(0), Matching(2)], True),     # one copy per subscription
    ([_copy(1), _copy(1)], 1, [Matching(0), Matching(2)], False),    # two copies for the same subscription
    ([_copy(0), _copy(0)], 1, [Matching(0)], True),                  # QoS 1 at granted 0: duplicates allowed
    ([_copy(1), _copy(1)], 1, [Matching(1)], False),
])
def test_check_copies(copies, publish_qos, matching, ok):
    assert (check_copies(copies, publish_qos, matching) is None) is ok


def test_check_copies_optional_and_identifiers():
    assert check_copies([], 0, [Matching(1)], required=False) is None
    both = [Matching(1, 5), Matching(2, 9)]
    assert check_copies([_copy(2, 9, 5)], 2, both, check_identifiers=True) is None
    assert check_copies([_copy(2, 9)], 2, both, check_identifiers=True) is not None       # single copy: all ids
    assert check_copies([_copy(1, 5), _copy(2, 9)], 2, both, check_identifiers=True) is None
    assert check_copies([_copy(1, 9), _copy(2, 5)], 2, both, check_identifiers=True) is not None  # ids swapped


def test_deviation_104_shape():
    matching = [Matching(0), Matching(2)]
    assert is_deviation_104(4, [_copy(0)], 2, matching)
    assert not is_deviation_104(5, [_copy(0)], 2, matching)
    assert not is_deviation_104(4, [_copy(2)], 2, matching)
    assert not is_deviation_104(4, [], 2, matching)

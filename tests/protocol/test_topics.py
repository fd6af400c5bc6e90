"""Topic names, topic filters, shared subscriptions, matching and the subscription trie (section 4.7, 4.8).

Tables check validation and shared-subscription parsing against hand-picked examples (many from
the specification's own text). Property tests compare the matchers: `topic_matches` (and
`topic_matcher`, the same for one filter and many names), the `SubscriptionTrie`, and
`reference_matches` below, a tiny independent matcher that translates a filter into a regular
expression. The trie must give exactly the filters `topic_matches` accepts.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as mqtt_st
from refbroker.protocol import (
    InvalidTopicFilter,
    InvalidTopicName,
    SubscriptionTrie,
    is_shared_subscription,
    is_valid_topic_filter,
    split_shared_subscription,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)
from refbroker.protocol.topics import topic_matcher

# ------------------------------------------------------------------------------ an independent matcher


def reference_matches(topic_filter: str, topic_name: str) -> bool:
    """Filter -> regular expression, written from the text of 4.7 without looking at topics.py.

    '+' is "[^/]*" (one level, possibly empty); a final '#' is "this level and everything below,
    including the parent": 'a/#' -> 'a(/.*)?', '#' -> '.*'. A name starting with '$' is never
    matched by a filter starting with a wildcard [MQTT-4.7.2-1].
    """
    if topic_name.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic_filter.split("/")
    multi = levels[-1] == "#"
    if multi:
        levels = levels[:-1]
    pattern = "/".join("[^/]*" if level == "+" else re.escape(level) for level in levels)
    if multi:
        pattern = pattern + "(/.*)?" if levels else ".*"
    return re.fullmatch(pattern, topic_name, flags=re.DOTALL) is not None


# Small alphabets so that random names and filters collide often; '$' appears inside and at the start.
SMALL_LEVELS = mqtt_st.topic_levels(alphabet=st.sampled_from("ab$"), max_size=2)
SMALL_NAMES = mqtt_st.topic_names(levels=SMALL_LEVELS, max_levels=4)
SMALL_FILTERS = mqtt_st.topic_filters(levels=SMALL_LEVELS, max_levels=4)

# ------------------------------------------------------------------------------------ validation tables

VALID_NAMES = ["a", "/", "//", "a/b", "/finance", "a/", "sport/tennis/player1", "$SYS/broker/uptime", " ", "a b",
               "ACCOUNTS", "\ufeff", "€/☃/𝄞", "a" * 100, "x" * 65_535]
INVALID_NAMES = [
    ("", "MQTT-4.7.3-1"),          # at least one character
    ("+", "MQTT-3.3.2-2"),         # no wildcards in a topic name
    ("#", "MQTT-3.3.2-2"),
    ("a/+", "MQTT-3.3.2-2"),
    ("a/#", "MQTT-3.3.2-2"),
    ("sport+", "MQTT-3.3.2-2"),    # even inside a level
    ("a#b", "MQTT-3.3.2-2"),
    ("a\x00b", "MQTT-4.7.3-2"),    # no U+0000
    ("x" * 65_536, "MQTT-4.7.3-3"),  # at most 65,535 bytes
    ("€" * 21_846, "MQTT-4.7.3-3"),  # 65,538 bytes in UTF-8
]
VALID_FILTERS = ["#", "+", "+/+", "/+", "+/", "a/#", "a/+/b", "+/#", "+/+/#", "$SYS/#", "$SYS/+/x", "a//b", "/",
                 "sport/tennis/player1/#", "sport/+/player1", "$share", "$sharex/a", "€/+", "x" * 65_535]
INVALID_FILTERS = [
    ("", "MQTT-4.7.3-1"),
    ("a#", "MQTT-4.7.1-2"),        # '#' must be a whole level ...
    ("sport/tennis#", "MQTT-4.7.1-2"),
    ("#/a", "MQTT-4.7.1-2"),       # ... and the last one
    ("sport/tennis/#/ranking", "MQTT-4.7.1-2"),
    ("##", "MQTT-4.7.1-2"),
    ("a+", "MQTT-4.7.1-3"),        # '+' must be a whole level
    ("sport+", "MQTT-4.7.1-3"),
    ("+a/b", "MQTT-4.7.1-3"),
    ("a/b+/c", "MQTT-4.7.1-3"),
    ("++", "MQTT-4.7.1-3"),
    ("a/\x00", "MQTT-4.7.3-2"),
    ("x" * 65_536, "MQTT-4.7.3-3"),
]
# (filter, ShareName, inner filter): valid shared subscriptions (5.0 4.8.2)
SHARED_VALID = [
    ("$share/g/a", "g", "a"),
    ("$share/group1/sport/tennis/+", "group1", "sport/tennis/+"),
    ("$share/g/#", "g", "#"),
    ("$share/g/+", "g", "+"),
    ("$share/g//", "g", "/"),
    ("$share/g/$SYS/#", "g", "$SYS/#"),
    ("$share/€/a/b", "€", "a/b"),
    ("$share/$share/a", "$share", "a"),
]
SHARED_INVALID = [
    ("$share//a", "MQTT-4.8.2-1"),      # ShareName at least one character
    ("$share/", "MQTT-4.8.2-1"),
    ("$share/g+/a", "MQTT-4.8.2-2"),    # no wildcard in the ShareName
    ("$share/+/a", "MQTT-4.8.2-2"),
    ("$share/#/a", "MQTT-4.8.2-2"),
    ("$share/g", "MQTT-4.8.2-2"),       # a topic filter must follow
    ("$share/g/", "MQTT-4.8.2-2"),
    ("$share/g/a#", "MQTT-4.7.1-2"),    # the inner filter is checked too
    ("$share/g/#/a", "MQTT-4.7.1-2"),
    ("$share/g/a+", "MQTT-4.7.1-3"),
]


def _id(value: str) -> str:
    return repr(value) if len(value) < 30 else f"{value[:10]!r}...({len(value)} chars)"


@pytest.mark.parametrize("name", VALID_NAMES, ids=_id)
def test_valid_topic_names(name: str) -> None:
    validate_topic_name(name)


@pytest.mark.parametrize("name,rule", INVALID_NAMES, ids=[_id(n) for n, _ in INVALID_NAMES])
def test_invalid_topic_names(name: str, rule: str) -> None:
    with pytest.raises(InvalidTopicName) as caught:
        validate_topic_name(name)
    assert caught.value.rule == rule
    assert caught.value.reason_code == 0x90  # Topic Name invalid


@pytest.mark.parametrize("topic_filter", VALID_FILTERS, ids=_id)
@pytest.mark.parametrize("allow_shared", [False, True], ids=["v311", "v5"])
def test_valid_topic_filters(topic_filter: str, allow_shared: bool) -> None:
    validate_topic_filter(topic_filter, allow_shared=allow_shared)
    assert is_valid_topic_filter(topic_filter, allow_shared=allow_shared)


@pytest.mark.parametrize("topic_filter,rule", INVALID_FILTERS, ids=[_id(f) for f, _ in INVALID_FILTERS])
@pytest.mark.parametrize("allow_shared", [False, True], ids=["v311", "v5"])
def test_invalid_topic_filters(topic_filter: str, rule: str, allow_shared: bool) -> None:
    with pytest.raises(InvalidTopicFilter) as caught:
        validate_topic_filter(topic_filter, allow_shared=allow_shared, version=4)
    assert caught.value.rule == rule  # the 3.1.1 ids
    assert caught.value.reason_code == 0x8F  # Topic Filter invalid
    assert not is_valid_topic_filter(topic_filter, allow_shared=allow_shared)


@pytest.mark.parametrize("topic_filter,share_name,inner", SHARED_VALID, ids=[f for f, _, _ in SHARED_VALID])
def test_shared_subscription_parsing(topic_filter: str, share_name: str, inner: str) -> None:
    assert is_shared_subscription(topic_filter)
    assert split_shared_subscription(topic_filter) == (share_name, inner)
    validate_topic_filter(topic_filter, allow_shared=True)


#: the wildcard rules as MQTT 5.0 numbers them (3.1.1's 4.7.1-2 and 4.7.1-3 are 5.0's 4.7.1-1 and 4.7.1-2)
V5_WILDCARD_IDS = {"MQTT-4.7.1-2": "MQTT-4.7.1-1", "MQTT-4.7.1-3": "MQTT-4.7.1-2"}


@pytest.mark.parametrize("topic_filter,rule", INVALID_FILTERS, ids=[_id(f) for f, _ in INVALID_FILTERS])
def test_invalid_topic_filters_cite_the_5_0_ids_for_a_5_0_client(topic_filter: str, rule: str) -> None:
    with pytest.raises(InvalidTopicFilter) as caught:
        validate_topic_filter(topic_filter, version=5)
    assert caught.value.rule == V5_WILDCARD_IDS.get(rule, rule)


@pytest.mark.parametrize("topic_filter,rule", SHARED_INVALID, ids=[f for f, _ in SHARED_INVALID])
def test_invalid_shared_subscriptions(topic_filter: str, rule: str) -> None:
    with pytest.raises(InvalidTopicFilter) as caught:
        validate_topic_filter(topic_filter, allow_shared=True, version=5)
    assert caught.value.rule == V5_WILDCARD_IDS.get(rule, rule)


@pytest.mark.parametrize("topic_filter,rule", SHARED_INVALID, ids=[f for f, _ in SHARED_INVALID])
def test_a_3_1_1_client_s_shared_subscription_errors_cite_no_5_0_statement(topic_filter: str, rule: str) -> None:
    """3.1.1 has no shared subscriptions (mosquitto accepts them from 3.1.1 clients, so refbroker does):
    a broken one cites no statement, the broken inner filter its 3.1.1 wildcard rule."""
    with pytest.raises(InvalidTopicFilter) as caught:
        validate_topic_filter(topic_filter, allow_shared=True, version=4)
    assert caught.value.rule == (rule if rule.startswith("MQTT-4.7.") else None)


@pytest.mark.parametrize("topic_filter", ["$share/g", "$share//a", "$share/g/"], ids=repr)
def test_share_prefix_is_an_ordinary_filter_in_v311(topic_filter: str) -> None:
    """3.1.1 has no shared subscriptions: these are plain (valid) filters there."""
    validate_topic_filter(topic_filter, allow_shared=False)


@pytest.mark.parametrize("topic_filter", ["$sharex/a", "$share", "share/g/a", "$SHARE/g/a"], ids=repr)
def test_not_shared(topic_filter: str) -> None:
    assert not is_shared_subscription(topic_filter)


# ----------------------------------------------------------------------------------- matching tables

MATCHES = [
    # 4.7.1.2: '#' matches the parent and any number of child levels
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("a/#", "a/", True),
    ("a/#", "ab", False),
    # 4.7.1.3: '+' matches exactly one level, which may be empty
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+/+/+", "a//b", True),
    ("a/+/b", "a//b", True),
    ("+", "", True),  # "" is no valid name, but '+' would match the empty level
    # 4.7.2: names starting with '$' and wildcards at the first level [MQTT-4.7.2-1]
    ("#", "$SYS/uptime", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("+/#", "$SYS", False),
    ("a/#", "a/$SYS", True),   # the rule is about the first character of the name only
    ("+/b", "a$/b", True),
    # 4.7.3: exact, case-sensitive comparison, no normalisation [MQTT-4.7.3-4]
    ("ACCOUNTS", "Accounts", False),
    ("a ", "a", False),
    ("a/b", "a/b/", False),
    ("/a", "a", False),
    ("\ufeffa", "a", False),
    ("e\u0301", "\u00e9", False),  # no Unicode normalisation
]


@pytest.mark.parametrize("topic_filter,name,expected", MATCHES, ids=[f"{f!r}~{n!r}" for f, n, _ in MATCHES])
def test_matching_examples(topic_filter: str, name: str, expected: bool) -> None:
    assert topic_matches(topic_filter, name) is expected
    assert topic_matcher(topic_filter)(name) is expected
    assert reference_matches(topic_filter, name) is expected
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    trie.add(topic_filter, "client", 1)
    assert [f for f, _, _ in trie.match(name)] == ([topic_filter] if expected else [])


# ------------------------------------------------------------------------------------ property tests


@given(mqtt_st.topic_names())
def test_generated_topic_names_are_valid(name: str) -> None:
    validate_topic_name(name)


@given(mqtt_st.topic_filters())
def test_generated_topic_filters_are_valid_in_both_versions(topic_filter: str) -> None:
    validate_topic_filter(topic_filter, allow_shared=False)
    validate_topic_filter(topic_filter, allow_shared=True)


@given(mqtt_st.topic_filters(shared=True))
def test_generated_shared_filters_are_valid_in_v5(topic_filter: str) -> None:
    validate_topic_filter(topic_filter, allow_shared=True)


@given(mqtt_st.invalid_topic_filters(shared=False))
def test_generated_invalid_filters_are_invalid_in_v311(topic_filter: str) -> None:
    assert not is_valid_topic_filter(topic_filter, allow_shared=False)


@given(mqtt_st.invalid_topic_filters(shared=True))
def test_generated_invalid_filters_are_invalid_in_v5(topic_filter: str) -> None:
    assert not is_valid_topic_filter(topic_filter, allow_shared=True)


@given(SMALL_FILTERS, SMALL_NAMES)
def test_topic_matches_agrees_with_the_reference(topic_filter: str, name: str) -> None:
    assert topic_matches(topic_filter, name) == reference_matches(topic_filter, name)
    assert topic_matcher(topic_filter)(name) == reference_matches(topic_filter, name)


@given(mqtt_st.topic_filters(), mqtt_st.topic_names())
def test_topic_matches_agrees_with_the_reference_on_any_text(topic_filter: str, name: str) -> None:
    assert topic_matches(topic_filter, name) == reference_matches(topic_filter, name)
    assert topic_matcher(topic_filter)(name) == reference_matches(topic_filter, name)


@given(SMALL_NAMES)
def test_a_name_matches_itself_and_its_wildcard_forms(name: str) -> None:
    levels = name.split("/")
    assert topic_matches(name, name)
    assert topic_matches("/".join(levels[:-1] + ["+"]), name) == (len(levels) > 1 or not name.startswith("$"))
    assert topic_matches("/".join(levels + ["#"]), name)  # the parent rule


@given(st.lists(st.tuples(SMALL_FILTERS, st.sampled_from(["c1", "c2", "c3"])), max_size=25),
       st.lists(SMALL_NAMES, min_size=1, max_size=10))
def test_trie_match_is_exactly_the_matching_filters(subscriptions: list[tuple[str, str]], names: list[str]) -> None:
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    stored: dict[tuple[str, str], int] = {}
    for value, (topic_filter, key) in enumerate(subscriptions):
        trie.add(topic_filter, key, value)
        stored[(topic_filter, key)] = value
    for name in names:
        found = list(trie.match(name))
        assert len(found) == len(set(found)), "a subscription matched twice"
        expected = {(f, k, v) for (f, k), v in stored.items() if topic_matches(f, name)}
        assert set(found) == expected
        assert expected == {(f, k, v) for (f, k), v in stored.items() if reference_matches(f, name)}


@given(st.lists(st.tuples(st.sampled_from(["add", "remove"]), SMALL_FILTERS, st.sampled_from(["c1", "c2"]),
                          st.integers(0, 9)), max_size=40))
def test_trie_add_remove_len_follow_a_dict(operations: list[tuple[str, str, str, int]]) -> None:
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    model: dict[tuple[str, str], int] = {}
    for operation, topic_filter, key, value in operations:
        if operation == "add":
            assert trie.add(topic_filter, key, value) == ((topic_filter, key) not in model)
            model[(topic_filter, key)] = value
        else:
            assert trie.remove(topic_filter, key) == ((topic_filter, key) in model)
            model.pop((topic_filter, key), None)
        assert len(trie) == len(model)
        assert trie.get(topic_filter, key) == model.get((topic_filter, key))
    assert sorted(trie.items()) == sorted((f, k, v) for (f, k), v in model.items())
    for topic_filter, key in list(model):
        assert trie.remove(topic_filter, key)
    assert len(trie) == 0
    assert list(trie.items()) == []
    assert trie._root.children == {}, "removing everything leaves empty branches behind"

"""Topic names, topic filters and how they match (MQTT 3.1.1 section 4.7, MQTT 5.0 sections 4.7 and 4.8).

A topic name is what a PUBLISH is sent to ("sport/tennis/player1"); a topic filter is what a
SUBSCRIBE asks for and may contain wildcards: '+' matches exactly one level, '#' matches the parent
level and any number of levels below it. Statement ids differ between the versions; comments give
both where they differ.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import ProtocolError, rule_for_version
from .reason_codes import ReasonCode

LEVEL_SEPARATOR = "/"
SINGLE_LEVEL_WILDCARD = "+"
MULTI_LEVEL_WILDCARD = "#"
SHARED_PREFIX = "$share/"
MAX_TOPIC_BYTES = 65_535


class InvalidTopicName(ProtocolError):
    reason_code = ReasonCode.TOPIC_NAME_INVALID
    generic_kind = "invalid topic name"


class InvalidTopicFilter(ProtocolError):
    reason_code = ReasonCode.TOPIC_FILTER_INVALID
    generic_kind = "invalid topic filter"


def _check_common(text: str, error: type[ProtocolError], kind: str) -> None:
    if not text:
        raise error(f"{kind} is empty", rule="MQTT-4.7.3-1")  # at least one character long
    if "\x00" in text:
        raise error(f"{kind} contains U+0000", rule="MQTT-4.7.3-2")
    if len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise error(f"{kind} is longer than 65,535 bytes", rule="MQTT-4.7.3-3")


def validate_topic_name(name: str) -> None:
    """Raise InvalidTopicName unless `name` may be published to."""
    _check_common(name, InvalidTopicName, "topic name")
    if SINGLE_LEVEL_WILDCARD in name or MULTI_LEVEL_WILDCARD in name:
        # [MQTT-3.3.2-2]; [MQTT-4.7.1-1] in 3.1.1, [MQTT-4.7.0-1] in 5.0
        raise InvalidTopicName(f"topic name {name!r} contains a wildcard", rule="MQTT-3.3.2-2",
                               kind="wildcard in topic name")


def validate_topic_filter(topic_filter: str, *, allow_shared: bool = True, version: int = 5) -> None:
    """Raise InvalidTopicFilter unless `topic_filter` may be subscribed to.

    With `allow_shared` a "$share/ShareName/filter" is checked as a shared subscription (MQTT 5.0; a
    broker may accept it from older clients too, as mosquitto does). `version` is the protocol level
    of the client: the error cites the statement as that version numbers it.
    """
    _check_common(topic_filter, InvalidTopicFilter, "topic filter")
    if allow_shared and topic_filter.startswith(SHARED_PREFIX):
        _share_name, topic_filter = split_shared_subscription(topic_filter, version=version)
    levels = topic_filter.split(LEVEL_SEPARATOR)
    for index, level in enumerate(levels):
        if MULTI_LEVEL_WILDCARD in level and (level != MULTI_LEVEL_WILDCARD or index != len(levels) - 1):
            # '#' alone in its level and the last character: [MQTT-4.7.1-2] 3.1.1, [MQTT-4.7.1-1] 5.0
            raise InvalidTopicFilter(f"'#' must be the whole last level in {topic_filter!r}",
                                     rule=rule_for_version(version, v311="MQTT-4.7.1-2", v5="MQTT-4.7.1-1"))
        if SINGLE_LEVEL_WILDCARD in level and level != SINGLE_LEVEL_WILDCARD:
            # '+' occupies an entire level: [MQTT-4.7.1-3] 3.1.1, [MQTT-4.7.1-2] 5.0
            raise InvalidTopicFilter(f"'+' must be a whole level in {topic_filter!r}",
                                     rule=rule_for_version(version, v311="MQTT-4.7.1-3", v5="MQTT-4.7.1-2"))


def is_valid_topic_filter(topic_filter: str, *, allow_shared: bool = True) -> bool:
    try:
        validate_topic_filter(topic_filter, allow_shared=allow_shared)
    except InvalidTopicFilter:
        return False
    return True


def is_shared_subscription(topic_filter: str) -> bool:
    return topic_filter.startswith(SHARED_PREFIX)


def split_shared_subscription(topic_filter: str, *, version: int = 5) -> tuple[str, str]:
    """"$share/group/a/b" -> ("group", "a/b"), checking [MQTT-4.8.2-1] and [MQTT-4.8.2-2] (5.0; MQTT
    3.1.1 has no shared subscriptions, so a 3.1.1 client's error cites no statement)."""

    def rule(v5: str) -> str | None:
        return rule_for_version(version, v311=None, v5=v5)

    rest = topic_filter[len(SHARED_PREFIX):]
    share_name, separator, inner_filter = rest.partition(LEVEL_SEPARATOR)
    if not rest:
        raise InvalidTopicFilter(f"shared subscription {topic_filter!r} has no ShareName and no topic filter",
                                 rule=rule("MQTT-4.8.2-1"), kind="bare $share/")
    if not share_name:
        raise InvalidTopicFilter(f"shared subscription {topic_filter!r} has an empty ShareName",
                                 rule=rule("MQTT-4.8.2-1"))
    if SINGLE_LEVEL_WILDCARD in share_name or MULTI_LEVEL_WILDCARD in share_name:
        raise InvalidTopicFilter(f"ShareName {share_name!r} contains a wildcard", rule=rule("MQTT-4.8.2-2"))
    if not separator or not inner_filter:
        raise InvalidTopicFilter(f"shared subscription {topic_filter!r} has no topic filter",
                                 rule=rule("MQTT-4.8.2-2"))
    return share_name, inner_filter


def topic_matches(topic_filter: str, topic_name: str) -> bool:
    """Does `topic_filter` (not shared, already valid) match `topic_name`?

    Matching is exact, character by character, with no normalisation [MQTT-4.7.3-4].
    """
    # A filter starting with a wildcard does not match a name starting with '$' [MQTT-4.7.2-1].
    if topic_name.startswith("$") and topic_filter[:1] in (SINGLE_LEVEL_WILDCARD, MULTI_LEVEL_WILDCARD):
        return False
    return _levels_match(topic_filter.split(LEVEL_SEPARATOR), topic_name.split(LEVEL_SEPARATOR))


def topic_matcher(topic_filter: str) -> Callable[[str], bool]:
    """`topic_matches` for one filter and many names (the retained messages a new subscription gets):
    the filter is split into levels once, and a name that does not start with the filter's levels
    before its first wildcard is refused without being split."""
    filter_levels = topic_filter.split(LEVEL_SEPARATOR)
    no_dollar = topic_filter[:1] in (SINGLE_LEVEL_WILDCARD, MULTI_LEVEL_WILDCARD)  # [MQTT-4.7.2-1]
    literal = []
    for level in filter_levels:
        if level in (SINGLE_LEVEL_WILDCARD, MULTI_LEVEL_WILDCARD):
            break
        literal.append(level)
    prefix = LEVEL_SEPARATOR.join(literal)

    def matches(topic_name: str) -> bool:
        if not topic_name.startswith(prefix) or (no_dollar and topic_name.startswith("$")):
            return False
        return _levels_match(filter_levels, topic_name.split(LEVEL_SEPARATOR))
    return matches


def _levels_match(filter_levels: list[str], name_levels: list[str]) -> bool:
    for index, level in enumerate(filter_levels):
        if level == MULTI_LEVEL_WILDCARD:
            return True  # '#' also matches the parent level: "a/#" matches "a"
        if index >= len(name_levels):
            return False
        if level != SINGLE_LEVEL_WILDCARD and level != name_levels[index]:
            return False
    return len(filter_levels) == len(name_levels)

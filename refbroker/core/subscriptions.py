"""Who is subscribed to what: ordinary and shared subscriptions, matched through a topic trie.

An ordinary subscription is stored in the trie under its filter with the client id as key. A shared
subscription "$share/group/a/+" (5.0 4.8.2) is stored under its inner filter "a/+" with the key
(group, client id), so one walk of the trie finds both kinds; the members of one group are then
collected and one of them is chosen per message (round robin), among the members that may read the
message: a member the ACL does not let read a topic is no member for that topic's messages, so a
client cannot join a group with a wide filter and take away messages it could never receive. The
matches come in the order mosquitto's subscription tree gives them (`_walk_position`), so a client
with overlapping subscriptions gets its copies in mosquitto's order.

The session (sessions.py) keeps its own copy of its subscriptions (filter -> options) so it can say
what it is subscribed to, take its subscriptions out when it ends, and tell a new subscription
from a replaced one (Retain Handling 1).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import SubscriptionTrie, is_shared_subscription, split_shared_subscription
from ..protocol.topics import LEVEL_SEPARATOR, MULTI_LEVEL_WILDCARD, SINGLE_LEVEL_WILDCARD


@dataclass(slots=True)
class SubscriptionOptions:
    qos: int                          # the granted QoS
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    identifier: int | None = None     # Subscription Identifier (5.0 3.8.2.1.2)
    share_name: str | None = None     # set for "$share/<name>/..." subscriptions


@dataclass(slots=True)
class Match:
    """One subscription that matched a topic name."""

    client_id: str
    options: SubscriptionOptions


MATCH_CACHE_SIZE = 10_000  # topic names whose matches are remembered at most (then it starts over)
_LEVEL_RANK = {SINGLE_LEVEL_WILDCARD: 1, MULTI_LEVEL_WILDCARD: 2}  # an exact level: 0


@functools.lru_cache(maxsize=4096)
def _walk_position(topic_filter: str) -> tuple[int, ...]:
    """Where mosquitto's walk of its subscription tree reaches the subscriptions of `topic_filter`, as
    a sort key. At each level the walk goes down the exact level first, then '+', then takes '#'; a
    node's '#' child comes before the node's own subscriptions ("a/#" before "a"). The order of the
    copies a client receives (5.0: one per matching subscription) follows it, as in mosquitto."""
    return tuple(_LEVEL_RANK.get(level, 0) for level in topic_filter.split(LEVEL_SEPARATOR)) + (3,)


class SubscriptionStore:
    def __init__(self) -> None:
        self._trie: SubscriptionTrie[str | tuple[str, str], SubscriptionOptions] = SubscriptionTrie()
        self._next_member: dict[tuple[str, str], int] = {}  # round robin position per shared group
        # Performance: what a topic name matched (ordinary subscriptions, members of each shared group)
        # is remembered until a subscription is added or removed. Clients publish to the same topics
        # again and again, and walking the trie is the costly part of routing a message.
        self._matched: dict[str, tuple[list[Match], dict[tuple[str, str], list[Match]]]] = {}
        self._shared = 0  # how many of the subscriptions are shared ones

    def __len__(self) -> int:
        """Every subscription, ordinary and shared."""
        return len(self._trie)

    @property
    def shared_count(self) -> int:
        """How many shared subscriptions there are ($SYS/broker/shared_subscriptions/count)."""
        return self._shared

    def add(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Add or replace; True if the subscription is new."""
        inner, key = self._locate(client_id, topic_filter)
        self._matched.clear()
        is_new = self._trie.add(inner, key, options)
        self._shared += is_new and isinstance(key, tuple)
        return is_new

    def remove(self, client_id: str, topic_filter: str) -> bool:
        inner, key = self._locate(client_id, topic_filter)
        self._matched.clear()
        removed = self._trie.remove(inner, key)
        self._shared -= removed and isinstance(key, tuple)
        return removed

    @staticmethod
    def _locate(client_id: str, topic_filter: str) -> tuple[str, str | tuple[str, str]]:
        if is_shared_subscription(topic_filter):
            share_name, inner = split_shared_subscription(topic_filter)
            return inner, (share_name, client_id)
        return topic_filter, client_id

    def match(self, topic: str, is_online: Callable[[str], bool],
              may_read: Callable[[str], bool] | None = None) -> list[Match]:
        """Every ordinary subscription matching `topic`, and one member of each matching shared group.

        `is_online(client_id)` lets the choice of a group member prefer connected clients;
        `may_read(client_id)` (the ACL) leaves out members that may not read `topic`, and a group none
        of whose members may read it gets no copy. The list may be the remembered one: read it, do
        not change it.
        """
        matched = self._matched.get(topic)
        if matched is None:
            if len(self._matched) >= MATCH_CACHE_SIZE:
                self._matched.clear()
            matched = self._matched[topic] = self._match_in_trie(topic)
        ordered, groups = matched
        if not groups:
            return ordered
        chosen = (item if isinstance(item, Match) else self._choose(item, groups[item], is_online, may_read)
                  for item in ordered)
        return [match for match in chosen if match is not None]

    def _match_in_trie(self, topic: str) -> tuple[list, dict[tuple[str, str], list[Match]]]:
        """(the ordinary matches and the matching groups' keys, in mosquitto's order; the groups' members)."""
        found: list[tuple[tuple[int, ...], Match | tuple[str, str]]] = []
        groups: dict[tuple[str, str], list[Match]] = {}
        for topic_filter, key, options in self._trie.match(topic):
            if isinstance(key, tuple):
                group = (key[0], topic_filter)
                if group not in groups:
                    groups[group] = []
                    found.append((_walk_position(topic_filter) + (0,), group))  # a node's groups first
                groups[group].append(Match(key[1], options))
            else:
                found.append((_walk_position(topic_filter) + (1,), Match(key, options)))
        found.sort(key=lambda entry: entry[0])  # stable: one filter's subscribers stay in subscription order
        for members in groups.values():
            members.sort(key=lambda match: match.client_id)  # a stable order for the round robin
        return [item for _, item in found], groups

    def _choose(self, group: tuple[str, str], members: list[Match], is_online: Callable[[str], bool],
                may_read: Callable[[str], bool] | None) -> Match | None:
        if may_read is not None:
            members = [member for member in members if may_read(member.client_id)]
            if not members:
                return None
        start = self._next_member.get(group, 0)
        for step in range(len(members)):
            candidate = members[(start + step) % len(members)]
            if is_online(candidate.client_id):
                self._next_member[group] = start + step + 1
                return candidate
        self._next_member[group] = start + 1
        return members[start % len(members)]

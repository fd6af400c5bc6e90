"""Who is subscribed to what: ordinary and shared subscriptions, matched through a topic trie.

An ordinary subscription is stored in the trie under its filter with the client id as key. A shared
subscription "$share/group/a/+" (5.0 4.8.2) is stored under its inner filter "a/+" with the key
(group, client id), so one walk of the trie finds both kinds; the members of one group are then
collected and one of them is chosen per message (round robin).

The session (sessions.py) keeps its own copy of its subscriptions (filter -> options) so it can say
what it is subscribed to, take its subscriptions out when it ends, and tell a new subscription
from a replaced one (Retain Handling 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import SubscriptionTrie, is_shared_subscription, split_shared_subscription


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


class SubscriptionStore:
    def __init__(self) -> None:
        self._trie: SubscriptionTrie[str | tuple[str, str], SubscriptionOptions] = SubscriptionTrie()
        self._next_member: dict[tuple[str, str], int] = {}  # round robin position per shared group
        # Performance: what a topic name matched (ordinary subscriptions, members of each shared group)
        # is remembered until a subscription is added or removed. Clients publish to the same topics
        # again and again, and walking the trie is the costly part of routing a message.
        self._matched: dict[str, tuple[list[Match], dict[tuple[str, str], list[Match]]]] = {}

    def __len__(self) -> int:
        return len(self._trie)

    def add(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Add or replace; True if the subscription is new."""
        inner, key = self._locate(client_id, topic_filter)
        self._matched.clear()
        return self._trie.add(inner, key, options)

    def remove(self, client_id: str, topic_filter: str) -> bool:
        inner, key = self._locate(client_id, topic_filter)
        self._matched.clear()
        return self._trie.remove(inner, key)

    @staticmethod
    def _locate(client_id: str, topic_filter: str) -> tuple[str, str | tuple[str, str]]:
        if is_shared_subscription(topic_filter):
            share_name, inner = split_shared_subscription(topic_filter)
            return inner, (share_name, client_id)
        return topic_filter, client_id

    def match(self, topic: str, is_online) -> list[Match]:
        """Every ordinary subscription matching `topic`, and one member of each matching shared group.

        `is_online(client_id)` lets the choice of a group member prefer connected clients. The list
        may be the remembered one: read it, do not change it.
        """
        matched = self._matched.get(topic)
        if matched is None:
            if len(self._matched) >= MATCH_CACHE_SIZE:
                self._matched.clear()
            matched = self._matched[topic] = self._match_in_trie(topic)
        ordinary, groups = matched
        if not groups:
            return ordinary
        return ordinary + [self._choose(group, members, is_online) for group, members in groups.items()]

    def _match_in_trie(self, topic: str) -> tuple[list[Match], dict[tuple[str, str], list[Match]]]:
        ordinary: list[Match] = []
        groups: dict[tuple[str, str], list[Match]] = {}
        for topic_filter, key, options in self._trie.match(topic):
            if isinstance(key, tuple):
                groups.setdefault((key[0], topic_filter), []).append(Match(key[1], options))
            else:
                ordinary.append(Match(key, options))
        for members in groups.values():
            members.sort(key=lambda match: match.client_id)  # a stable order for the round robin
        return ordinary, groups

    def _choose(self, group: tuple[str, str], members: list[Match], is_online) -> Match:
        start = self._next_member.get(group, 0)
        for step in range(len(members)):
            candidate = members[(start + step) % len(members)]
            if is_online(candidate.client_id):
                self._next_member[group] = start + step + 1
                return candidate
        self._next_member[group] = start + 1
        return members[start % len(members)]

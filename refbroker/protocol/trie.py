"""A subscription trie: which subscriptions match a topic name, without testing every filter.

Each node is one topic level. A subscription is stored at the node its filter ends on, under a key
chosen by the caller (a client id, or (share name, client id) for shared subscriptions). Matching a
topic name walks exact children, '+' children and '#' children level by level, so the cost grows
with the depth of the name and the number of matches, not with the number of subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Hashable, Iterator, TypeVar

from .topics import LEVEL_SEPARATOR, MULTI_LEVEL_WILDCARD, SINGLE_LEVEL_WILDCARD

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


@dataclass
class _Node(Generic[Key, Value]):
    children: dict[str, "_Node[Key, Value]"] = field(default_factory=dict)
    subscribers: dict[Key, Value] = field(default_factory=dict)


class SubscriptionTrie(Generic[Key, Value]):
    """Maps (topic filter, key) to a value, and a topic name to the values whose filters match it."""

    def __init__(self) -> None:
        self._root: _Node[Key, Value] = _Node()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, topic_filter: str, key: Key, value: Value) -> bool:
        """Store `value` for (`topic_filter`, `key`); True if it is new, False if it replaced one."""
        node = self._root
        for level in topic_filter.split(LEVEL_SEPARATOR):
            node = node.children.setdefault(level, _Node())
        is_new = key not in node.subscribers
        node.subscribers[key] = value
        self._count += is_new
        return is_new

    def get(self, topic_filter: str, key: Key) -> Value | None:
        node = self._find(topic_filter)
        return None if node is None else node.subscribers.get(key)

    def remove(self, topic_filter: str, key: Key) -> bool:
        """Remove (`topic_filter`, `key`); True if it existed. Empty branches are pruned."""
        path = [self._root]
        for level in topic_filter.split(LEVEL_SEPARATOR):
            child = path[-1].children.get(level)
            if child is None:
                return False
            path.append(child)
        if key not in path[-1].subscribers:
            return False
        del path[-1].subscribers[key]
        self._count -= 1
        levels = topic_filter.split(LEVEL_SEPARATOR)
        for depth in range(len(levels), 0, -1):
            node = path[depth]
            if node.subscribers or node.children:
                break
            del path[depth - 1].children[levels[depth - 1]]
        return True

    def match(self, topic_name: str) -> list[tuple[str, Key, Value]]:
        """(topic filter, key, value) for every subscription whose filter matches `topic_name`.

        The walk keeps its own stack instead of recursing: a topic name may have as many levels as a
        client likes (a 65,535-byte name of slashes has 65,536), and Python's recursion would give out
        at about a thousand. The filter a match was found under is rebuilt only for the matches.
        """
        levels = topic_name.split(LEVEL_SEPARATOR)
        count = len(levels)
        # Filters starting with a wildcard never match names starting with '$' [MQTT-4.7.2-1].
        skip_wildcards_at_root = topic_name.startswith("$")
        found: list[tuple[str, Key, Value]] = []
        # (node, levels of the name it has consumed, the filter levels that led to it as a linked list)
        stack: list[tuple[_Node[Key, Value], int, tuple | None]] = [(self._root, 0, None)]
        while stack:
            node, depth, path = stack.pop()
            wildcards = depth > 0 or not skip_wildcards_at_root
            if wildcards:
                everything = node.children.get(MULTI_LEVEL_WILDCARD)
                if everything is not None and everything.subscribers:
                    # '#' matches this level and all below, the parent included
                    topic_filter = _joined((MULTI_LEVEL_WILDCARD, path))
                    for key, value in everything.subscribers.items():
                        found.append((topic_filter, key, value))
            if depth == count:
                if node.subscribers:
                    topic_filter = _joined(path)
                    for key, value in node.subscribers.items():
                        found.append((topic_filter, key, value))
                continue
            level = levels[depth]
            # Pushed in reverse: the exact level is walked before '+', as a recursive walk would
            if wildcards and level != SINGLE_LEVEL_WILDCARD:
                one_level = node.children.get(SINGLE_LEVEL_WILDCARD)
                if one_level is not None:
                    stack.append((one_level, depth + 1, (SINGLE_LEVEL_WILDCARD, path)))
            exact = node.children.get(level)
            if exact is not None:
                stack.append((exact, depth + 1, (level, path)))
        return found

    def items(self) -> Iterator[tuple[str, Key, Value]]:
        """Every (topic filter, key, value) stored."""
        stack: list[tuple[_Node[Key, Value], list[str]]] = [(self._root, [])]
        while stack:
            node, path = stack.pop()
            for key, value in node.subscribers.items():
                yield LEVEL_SEPARATOR.join(path), key, value
            for level, child in node.children.items():
                stack.append((child, path + [level]))

    def _find(self, topic_filter: str) -> _Node[Key, Value] | None:
        node: _Node[Key, Value] | None = self._root
        for level in topic_filter.split(LEVEL_SEPARATOR):
            node = node.children.get(level) if node else None
        return node


def _joined(path: tuple | None) -> str:
    """"a/b/c" from the linked list ("c", ("b", ("a", None)))."""
    levels = []
    while path is not None:
        level, path = path
        levels.append(level)
    levels.reverse()
    return LEVEL_SEPARATOR.join(levels)

"""mosquitto's ACL file (`acl_file`): which topics a client may read (receive) and write (publish).

    # before any `user` line: rules for anonymous clients (no user name)
    topic read public/#

    user alice
    topic readwrite alice/#          # access: read, write, readwrite (the default) or deny
    topic deny alice/secret

    pattern readwrite clients/%c/#   # for every client: %c is its client id, %u its user name

A client may do something to a topic when no `deny` rule of its own matches it and some rule of its
own allows it; everything else is refused. A pattern whose %c or %u would bring a '+', '#' or '/'
into the filter (or whose %u has no user name to stand for) never applies, so nobody can widen a
rule by choosing a strange client id.

Besides single topics (`allows`), the broker asks about whole subscriptions (`may_subscribe`): a
topic filter is refused if a `deny` rule covers all of it, or if no readable rule overlaps it at
all, i.e. it could never deliver a message. Messages reaching a granted subscription are still
checked one by one. (mosquitto 2.0.11 grants every subscription and only filters the messages.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..protocol import topic_matches
from .errors import AuthFileError, read_auth_file

READ, WRITE = 1, 2
DENY = 0
_ACCESS = {"read": READ, "write": WRITE, "readwrite": READ | WRITE, "deny": DENY}


@dataclass(frozen=True)
class Rule:
    access: int       # READ, WRITE, READ | WRITE, or DENY
    topic: str        # a topic filter; for patterns it may hold %c and %u
    pattern: bool = False

    def filter_for(self, client_id: str, username: str | None) -> str | None:
        """The topic filter this rule stands for with this client; None if it does not apply."""
        if not self.pattern:
            return self.topic
        topic = self.topic
        for marker, value in (("%c", client_id), ("%u", username)):
            if marker in topic:
                if not value or any(character in value for character in "+#/"):
                    return None
                topic = topic.replace(marker, value)
        return topic


class AccessControlList:
    def __init__(self, anonymous: list[Rule] | None = None, users: dict[str, list[Rule]] | None = None,
                 patterns: list[Rule] | None = None):
        self.anonymous = anonymous or []
        self.users = users or {}
        self.patterns = patterns or []

    @classmethod
    def parse(cls, text: str, path: str = "<acl_file>") -> AccessControlList:
        acl = cls()
        current = acl.anonymous
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keyword, _, rest = line.partition(" ")
            rest = rest.strip()
            if keyword == "user":
                if not rest:
                    raise AuthFileError(f"{path}:{number}: user needs a name")
                current = acl.users.setdefault(rest, [])
            elif keyword in ("topic", "pattern"):
                access_word, _, topic = rest.partition(" ")
                if access_word in _ACCESS and topic.strip():
                    access, topic = _ACCESS[access_word], topic.strip()
                else:
                    access, topic = READ | WRITE, rest  # no access word: readwrite
                if not topic:
                    raise AuthFileError(f"{path}:{number}: {keyword} needs a topic")
                rule = Rule(access, topic, keyword == "pattern")
                (acl.patterns if rule.pattern else current).append(rule)
            else:
                raise AuthFileError(f"{path}:{number}: expected user, topic or pattern, got {keyword!r}")
        return acl

    @classmethod
    def load(cls, path: str | os.PathLike) -> AccessControlList:
        return cls.parse(read_auth_file(path), str(path))

    def _filters(self, client_id: str, username: str | None) -> list[tuple[int, str]]:
        rules = self.users.get(username, []) if username is not None else self.anonymous
        filters = [(rule.access, rule.topic) for rule in rules]
        for rule in self.patterns:
            topic_filter = rule.filter_for(client_id, username)
            if topic_filter is not None:
                filters.append((rule.access, topic_filter))
        return filters

    def allows(self, client_id: str, username: str | None, topic: str, access: int) -> bool:
        """May this client read (receive) or write (publish) this topic name?"""
        filters = self._filters(client_id, username)
        if any(granted == DENY and topic_matches(f, topic) for granted, f in filters):
            return False
        return any(granted & access and topic_matches(f, topic) for granted, f in filters)

    def may_subscribe(self, client_id: str, username: str | None, topic_filter: str) -> bool:
        """Could a subscription to `topic_filter` ever deliver a message this client may read?"""
        wanted = topic_filter.split("/")
        filters = self._filters(client_id, username)
        if any(granted == DENY and _covers(f.split("/"), wanted) for granted, f in filters):
            return False
        return any(granted & READ and _overlap(f.split("/"), wanted) for granted, f in filters)


def _overlap(a: list[str], b: list[str], top: bool = True) -> bool:
    """Is there a topic name that both filters match? (Wildcards never match a leading '$' level.)"""
    if a and a[0] == "#" or b and b[0] == "#":
        other = b if a and a[0] == "#" else a
        return not (top and other and other[0].startswith("$"))
    if not a or not b:
        return not a and not b
    if a[0] == b[0] or (a[0] == "+" and not (top and b[0].startswith("$"))) or (
            b[0] == "+" and not (top and a[0].startswith("$"))):
        return _overlap(a[1:], b[1:], False)
    return False


def _covers(outer: list[str], inner: list[str]) -> bool:
    """Does `outer` match every topic name that `inner` matches?"""
    if outer and outer[0] == "#":
        return True
    if not outer or not inner:
        return not outer and not inner
    if inner[0] == "#":
        return False
    if outer[0] == "+" or outer[0] == inner[0]:
        return _covers(outer[1:], inner[1:])
    return False

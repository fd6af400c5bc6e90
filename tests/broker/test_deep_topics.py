"""Topic names and filters as deep as a client likes: nothing in the broker recurses on their depth.

A topic may be up to 65,535 bytes [MQTT-4.7.3-3], so up to 65,536 levels ("/" repeated). The
subscription trie walks them with its own stack; a will to such a topic is published like any other.
(PUBLISH and SUBSCRIBE themselves stop at mosquitto's limit of 200 '/', as mosquitto does.)
"""

from __future__ import annotations

import pytest

from refbroker.protocol import Publish, SubscriptionTrie, Will

from .harness import Harness


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_a_deep_topic_matches_ordinary_and_wildcard_filters(depth):
    name = "/".join(["x"] * depth)
    trie: SubscriptionTrie[str, int] = SubscriptionTrie()
    trie.add(name, "exact", 1)
    trie.add("#", "all", 2)
    trie.add("/".join(["+"] * depth), "plus", 3)
    trie.add("/".join(["x"] * (depth - 1) + ["#"]), "parent", 4)
    assert sorted(key for _, key, _ in trie.match(name)) == ["all", "exact", "parent", "plus"]
    assert trie.remove(name, "exact") and len(trie) == 3


def test_deep_publishes_subscriptions_and_wills_go_through_the_broker():
    """As mosquitto, a PUBLISH or SUBSCRIBE with more than 200 '/' is refused (core/compat.py); a will to
    such a topic (CONNECT's will topic is not limited) still goes through the whole match."""
    h = Harness()
    deep = "/".join(["d"] * 5_000)
    watcher, _ = h.connect("watcher", 5)
    watcher.subscribe(("#", 1))
    publisher, _ = h.connect("publisher")
    assert publisher.send(Publish(deep, b"payload", qos=1, packet_id=1)) == [] and publisher.closed
    deep_subscriber, _ = h.connect("deep", 5)
    assert [p.reason_code for p in deep_subscriber.subscribe((deep, 1))] == [0x81] and deep_subscriber.closed
    dying, _ = h.connect("dying", 4, will=Will(deep, b"bye"))
    dying.drop()  # the will goes out through the same match
    assert [(p.topic, p.payload) for p in watcher.take() if isinstance(p, Publish)] == [(deep, b"bye")]
    limit = "/".join(["d"] * 201)  # 200 '/': still accepted
    fine, _ = h.connect("fine")
    fine.send(Publish(limit, b"ok", qos=1, packet_id=1))
    assert [p.topic for p in watcher.take() if isinstance(p, Publish)] == [limit]
    assert not [text for kind, text in h.logs if kind == "error"]

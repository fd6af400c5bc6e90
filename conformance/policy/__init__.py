"""The test server policy: checks a broker against test.mosquitto.org's listeners and rules.

    pytest --pyargs conformance.policy --policy-layout test-server/layout.json     # a local replica
    pytest --pyargs conformance.policy --policy-layout public --policy-cafile mosquitto.org.crt

The replica comes from `refbroker --test-server --out test-server` and runs on refbroker
(test-server/refbroker.conf) or on mosquitto (mosquitto -c test-server/mosquitto.conf): the same
checks, listener by listener and user by user, tell whether both enforce the same policy.

    layout.py                 where the server is, its listeners, CAs, users and rules
    test_policy.py            the checks
"""

from __future__ import annotations

__all__ = ["add_options"]


def add_options(group) -> None:
    """The policy module's options, added to the conformance plugin's group (plugin.py calls this)."""
    group.addoption("--policy-layout", default=None, metavar="LAYOUT",
                    help="test server policy checks (conformance.policy): a layout.json written by "
                         "refbroker --test-server (or its directory), or 'public' for test.mosquitto.org")
    group.addoption("--policy-cafile", default=None, metavar="FILE",
                    help="CA certificate of the test server's TLS listeners (default: the layout's ca.crt)")
    group.addoption("--policy-client-cert", default=None, metavar="FILE",
                    help="client certificate for the client-certificate listener (default: the layout's)")
    group.addoption("--policy-client-key", default=None, metavar="FILE", help="its private key")

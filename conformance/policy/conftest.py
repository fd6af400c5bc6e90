"""The policy checks run when asked for (--policy-layout, or conformance.policy named on the command
line), not as part of every `pytest --pyargs conformance` run of the suite."""

from __future__ import annotations


def pytest_ignore_collect(collection_path, config):
    if collection_path.name != "test_policy.py":
        return None
    asked = config.getoption("--policy-layout", None) or any("policy" in str(arg) for arg in config.args)
    return None if asked else True

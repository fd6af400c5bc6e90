"""Shared pytest configuration for the project's own tests.

Hypothesis profiles, chosen with the environment variable HYPOTHESIS_PROFILE (default "ci"):

* ci       -- about 60 examples per property test, no deadline: fast enough for every run.
* thorough -- 1000 examples per property test, for a longer hunt before a release:
              HYPOTHESIS_PROFILE=thorough ./run tests
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ------------------------------------------------------------------------------------------------------------
# In CI nothing may be skipped for want of a tool: CI installs mosquitto, Docker, Chromium and the Python
# packages. A test skips on a user's machine with a message naming what is missing ("apt-get install ...",
# "pip install ..."); with CI set, such a skip is turned into a failure so a broken install step cannot hide.
import pytest  # noqa: E402

_MISSING_TOOL_HINTS = ("apt-get install", "pip install", "not installed", "not available")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(hint in reason for hint in _MISSING_TOOL_HINTS):
        report.outcome = "failed"
        report.longrepr = f"skipped for a missing tool, which CI must install: {reason}"

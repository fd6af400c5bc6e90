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

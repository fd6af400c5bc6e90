"""The suite's two Hypothesis profiles and how one is chosen: one scheme, the `HYPOTHESIS_PROFILE`
environment variable (which tox passes on).

* ``ci`` (default, also for any value that is not one of ours) -- 25 examples, no shrinking, and
  *derandomized*: every run draws the same examples (Hypothesis derives them from each test's own
  source), so identical runs give identical verdicts;
* ``thorough`` -- 300 examples and longer state-machine runs, shrinking on, random examples; the plugin
  fixes the run's seed (``--hypothesis-seed``, or one it draws) and records it in the results file, so
  a run that found something can be repeated with ``--hypothesis-seed=N``.

The profiles apply to the suite's property tests and state machine only (through `suite_settings`),
never to the session's global Hypothesis profile, so a project's own tests keep theirs. Both have no
deadline (every example talks to a broker over TCP), suppress the health checks that network tests trip
without being wrong, and use no example database (no ``.hypothesis`` directory is left behind).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

__all__ = ["PROFILES", "PROFILE_ENV", "is_derandomized", "profile_name", "suite_settings"]

PROFILE_ENV = "HYPOTHESIS_PROFILE"
PROFILES = ("ci", "thorough")

_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
           HealthCheck.filter_too_much]
_COMMON = dict(deadline=None, suppress_health_check=_HEALTH, database=None, print_blob=True)

# CI does not shrink: against a live broker every shrink step costs network round trips, and shrinking a
# failing state-machine run takes minutes. The failure report still shows the failing example (and the
# blob to replay it with @reproduce_failure); the thorough profile shrinks to a minimal one.
NO_SHRINK_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
settings.register_profile("mqtt-conformance-ci", max_examples=25, stateful_step_count=15, phases=NO_SHRINK_PHASES,
                          derandomize=True, **_COMMON)
settings.register_profile("mqtt-conformance-thorough", max_examples=300, stateful_step_count=40, derandomize=False,
                          **_COMMON)  # explicit: with CI set, Hypothesis's own defaults derandomize


def profile_name() -> str:
    """"ci" or "thorough", from HYPOTHESIS_PROFILE ("ci" when unset or naming a profile that is not ours)."""
    chosen = os.environ.get(PROFILE_ENV, "").strip()
    return chosen if chosen in PROFILES else "ci"


def is_derandomized() -> bool:
    return bool(settings.get_profile(f"mqtt-conformance-{profile_name()}").derandomize)


def suite_settings(**overrides) -> settings:
    """The settings of the selected profile, with per-test `overrides` (e.g. fewer examples for a slow test).

    Overrides of `max_examples` are scaled: the thorough profile multiplies them by 25.
    """
    name = profile_name()
    base = settings.get_profile(f"mqtt-conformance-{name}")
    if "max_examples" in overrides and name == "thorough":
        overrides["max_examples"] *= 25
    if "stateful_step_count" in overrides and name == "thorough":
        overrides["stateful_step_count"] = max(overrides["stateful_step_count"] * 3, 40)
    return settings(base, **overrides)

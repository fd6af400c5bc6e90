"""The two exceptions that end a conformance test with an outcome other than pass.

* `ConformanceFailure`: the broker did something the test does not allow. An `AssertionError`, so a
  plain `assert` in a test and a failure raised by the raw client (conformance/client.py) end alike:
  outcome *fail*.
* `HarnessError`: the harness itself could not do its job (the broker cannot be reached, does not
  start, a target is misconfigured). Not an assertion: outcome *error*.

They live apart from the client that raises most of them because the targets, the outcome helpers
(conformance/outcomes.py), the per-statement checks and the classification of reports raise or
recognise them too; this module imports nothing of the project, so all of those can build on it.
"""

from __future__ import annotations

__all__ = ["ConformanceFailure", "HarnessError"]


class HarnessError(Exception):
    """The harness could not do its job (broker unreachable, did not start...): outcome *error*."""


class ConformanceFailure(AssertionError):
    """The broker did something the test did not allow: outcome *fail*."""

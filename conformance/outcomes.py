"""How a conformance test reports outcomes other than pass and fail.

* `not_applicable(reason)`: the broker does not offer an optional feature the test needs (read from
  its v5 CONNACK or from the target profile). Implemented as a pytest skip whose reason starts with
  `NOT_APPLICABLE_PREFIX`; the results file records "not-applicable" with the reason.
* `known_deviation(number, observed)`: the broker did what a known deviation of *this* target
  (conformance/deviations.py, matched on the target's version string or declared in its profile)
  says it does. Implemented as a pytest xfail whose reason starts with "known deviation #N"; the
  results file records "fail" with `known_deviation: N`. On any other target the same observation
  is a plain failure, whose message does not mention the other broker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NoReturn

from .deviations import DEVIATIONS, applies_to_target
from .errors import ConformanceFailure

if TYPE_CHECKING:
    from .targets import BrokerTarget

__all__ = [
    "KNOWN_DEVIATION_PREFIX",
    "NOT_APPLICABLE_PREFIX",
    "DeviationObserved",
    "current_target",
    "known_deviation",
    "not_applicable",
    "parse_known_deviation",
    "set_current_target",
]

NOT_APPLICABLE_PREFIX = "not applicable: "
KNOWN_DEVIATION_PREFIX = "known deviation #"
_KNOWN_DEVIATION_RE = re.compile(r"known deviation #(\d+)")

_current: dict[str, BrokerTarget | None] = {"target": None}


def set_current_target(target: BrokerTarget | None) -> None:
    """Called by the plugin when the session's broker starts (and with None when it stops)."""
    _current["target"] = target


def current_target() -> BrokerTarget | None:
    return _current["target"]


def not_applicable(reason: str) -> NoReturn:
    """End the test as "not applicable" (an optional feature the broker does not offer)."""
    import pytest

    try:  # report the test's location, not this helper's, in pytest's short summary
        exc = pytest.skip.Exception(NOT_APPLICABLE_PREFIX + reason, _use_item_location=True)
    except TypeError:  # a pytest without that (private) argument
        exc = pytest.skip.Exception(NOT_APPLICABLE_PREFIX + reason)
    raise exc


def known_deviation(number: int, observed: str) -> NoReturn:
    """The broker showed known deviation `number`: xfail on targets that have it, fail on others."""
    import pytest

    deviation = DEVIATIONS.get(number)
    if deviation is None:
        raise KeyError(f"no known deviation #{number} in conformance/deviations.py")
    target = current_target()
    if target is not None and applies_to_target(number, target):
        pytest.xfail(f"{KNOWN_DEVIATION_PREFIX}{number} ({deviation.reference}): {deviation.title}. "
                     f"Observed: {observed}")
    version_string = target.version_string if target is not None else ""
    if deviation.broker in (version_string or "").lower():
        # the same broker, a version not known to have it: worth saying (the table may need a new row)
        raise DeviationObserved(number, f"{observed} [the behaviour of known deviation #{number} of "
                                        f"{deviation.broker} {deviation.versions_text}, seen on {version_string}]")
    raise DeviationObserved(number, observed)


class DeviationObserved(ConformanceFailure):
    """A failure whose shape is known deviation `number` on a target not known to have it (outcome *fail*;
    the deviation's statements are the ones that failed)."""

    def __init__(self, number: int, message: str):
        super().__init__(message)
        self.number = number


def parse_known_deviation(reason: str) -> int | None:
    match = _KNOWN_DEVIATION_RE.search(reason or "")
    return int(match.group(1)) if match else None

"""kill -9 while clients publish: with `persistence_durable_acks true` refbroker loses no message it
acknowledged; with mosquitto's autosave it may lose what mosquitto may lose. The short version of
`python -m bench.crash` (see bench/crash.py), real processes, real SIGKILL, real files.
"""

from __future__ import annotations

import pytest

from bench.crash import run_one

from ..broker.processes import require


def test_durable_acknowledgements_lose_nothing_acknowledged_through_repeated_kill_9():
    outcome = run_one("refbroker-durable", kills=3, interval=1.5, autosave=1, progress=lambda text: None)
    print(outcome)
    assert outcome.acknowledged > 20  # the run did publish
    assert outcome.lost == 0, f"acknowledged but lost: {outcome.lost_examples}"


@pytest.mark.parametrize("kind", ["refbroker", "mosquitto"])
def test_autosave_brokers_survive_repeated_kill_9_and_keep_what_they_saved(kind):
    """With autosave what was acknowledged after the last save may be lost (mosquitto's promise too):
    no figure is asserted, but the broker must come back every time and deliver what it kept."""
    require(kind)
    outcome = run_one(kind, kills=3, interval=1.5, autosave=1, progress=lambda text: None)
    print(outcome)
    assert outcome.acknowledged > 20
    assert 0 < outcome.received  # what was saved (or delivered before a kill) arrives
    assert outcome.lost <= outcome.acknowledged

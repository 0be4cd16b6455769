"""A small soak of the escalation scheduler (slow): bench/soak_scheduler.py at 3,000 tickets.

Two ``slaengine worker`` processes fire each ticket's threshold and breach
notice over a 30 s window to a signed webhook receiver that honours
idempotency keys; one worker is killed with SIGKILL half-way and restarted.
"""

from __future__ import annotations

import pytest

from tests.conftest import load_bench

pytestmark = pytest.mark.slow


ARGS = ["--tickets", "3000", "--window", "30", "--workers", "2", "--grace", "90"]


@pytest.fixture(scope="module")
def crashed() -> object:
    return load_bench("soak_scheduler").run(ARGS)


def test_across_a_kill_no_escalation_is_lost_or_acted_on_twice(crashed) -> None:
    assert crashed.held_at_kill > 0, "the kill did not catch the worker mid-delivery"
    assert (crashed.lost, crashed.undelivered, crashed.missing) == (0, 0, 0)
    assert crashed.states == {"sent": 2 * 3000}
    assert len(crashed.breach_lateness) == 3000
    # Re-sends come only from rows the killed worker had claimed (at least once).
    assert crashed.unexplained_repeats == 0


def test_across_a_kill_every_threshold_fires_within_one_second(crashed) -> None:
    assert crashed.takeover is not None and crashed.takeover < 1.0
    assert max(crashed.escalation_lateness + crashed.breach_lateness) <= 1.0

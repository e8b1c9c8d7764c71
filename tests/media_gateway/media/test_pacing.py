"""The pacing clock: absolute deadlines, no drift over a long call, no burst after a stall."""

from __future__ import annotations

import random

import pytest
from dialtone.media_gateway.media.pacing import PacingClock


def test_no_drift_over_a_two_hour_call_with_jittery_wakeups() -> None:
    """Woken 0..8 ms late at every deadline for 2 h, the clock has taken exactly one tick per 20 ms."""
    rng = random.Random(5)
    clock = PacingClock(start=1000.0, interval=0.020)
    ticks = 0
    now = 1000.0
    for _ in range(360_000):
        now = clock.next_deadline() + rng.uniform(0.0, 0.008)
        due = clock.take(now)
        assert due.ticks == 1
        ticks += due.ticks
    assert ticks == int((now - 1000.0) / 0.020) + 1
    assert clock.next_deadline() == pytest.approx(1000.0 + 360_000 * 0.020)


def test_early_wakeup_takes_nothing() -> None:
    clock = PacingClock(start=0.0, interval=0.020)
    assert clock.take(0.0).ticks == 1
    due = clock.take(0.0199)
    assert (due.ticks, due.lateness) == (0, 0.0)


def test_stall_reports_all_missed_deadlines_in_one_take() -> None:
    """A 95 ms stall: one take returns the 5 passed deadlines and how late the first one is."""
    clock = PacingClock(start=0.0, interval=0.020)
    clock.take(0.0)
    due = clock.take(0.115)
    assert due.ticks == 5
    assert due.lateness == pytest.approx(0.095)
    assert clock.next_deadline() == pytest.approx(0.120)
    assert clock.take(0.120).ticks == 1


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        PacingClock(0.0, 0.0)

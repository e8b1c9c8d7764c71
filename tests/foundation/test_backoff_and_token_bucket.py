"""The shared retry pacing (dialtone.common.backoff) and rate limit (dialtone.common.token_bucket)."""

from __future__ import annotations

import random

import pytest
from dialtone.common import token_bucket
from dialtone.common.backoff import backoff_delay


def never() -> float:
    raise AssertionError("no jitter asked for, yet the rng was drawn")


class TestBackoff:
    def test_the_wait_doubles_with_each_failure_from_the_initial_one(self) -> None:
        assert [backoff_delay(n, 0.1, 100.0, rng=never) for n in range(1, 6)] == pytest.approx(
            [0.1, 0.2, 0.4, 0.8, 1.6])

    def test_the_wait_never_exceeds_the_cap(self) -> None:
        assert backoff_delay(6, 0.1, 2.0) == pytest.approx(2.0)     # 3.2 uncapped
        assert backoff_delay(5, 0.1, 2.0) == pytest.approx(1.6)     # below the cap: untouched
        assert backoff_delay(10_000, 0.1, 2.0) == pytest.approx(2.0)  # no float overflow

    def test_no_failure_yet_waits_the_initial_delay(self) -> None:
        assert backoff_delay(0, 0.25, 2.0) == backoff_delay(1, 0.25, 2.0) == pytest.approx(0.25)

    def test_equal_jitter_stays_between_half_and_all_of_the_wait(self) -> None:
        assert backoff_delay(3, 0.1, 2.0, jitter=0.5, rng=lambda: 0.0) == pytest.approx(0.2)
        assert backoff_delay(3, 0.1, 2.0, jitter=0.5, rng=lambda: 1.0) == pytest.approx(0.4)
        rng = random.Random(7).random
        waits = [backoff_delay(3, 0.1, 2.0, jitter=0.5, rng=rng) for _ in range(1000)]
        assert all(0.2 <= w <= 0.4 for w in waits)
        assert max(waits) - min(waits) > 0.15       # spread out, not one value

    def test_full_jitter_may_wait_nothing_and_draws_out_of_range_are_clamped(self) -> None:
        assert backoff_delay(2, 0.1, 2.0, jitter=1.0, rng=lambda: 0.0) == 0.0
        assert backoff_delay(2, 0.1, 2.0, jitter=1.0, rng=lambda: 5.0) == pytest.approx(0.2)
        assert backoff_delay(2, 0.1, 2.0, jitter=1.0, rng=lambda: -1.0) == 0.0


class TestTokenBucket:
    def test_burst_then_refusal_then_refill(self) -> None:
        """A bucket of 3 at 2/s lets 3 through at once, refuses the 4th, and has one again after 0.5 s."""
        state = None
        for _ in range(3):
            state, decision = token_bucket.take(state, 0.0, 2.0, 3)
            assert decision.allowed
        state, decision = token_bucket.take(state, 0.0, 2.0, 3)
        assert not decision.allowed and decision.wait_s == pytest.approx(0.5)
        state, decision = token_bucket.take(state, 0.25, 2.0, 3)
        assert not decision.allowed and decision.wait_s == pytest.approx(0.25)
        state, decision = token_bucket.take(state, 0.5, 2.0, 3)
        assert decision.allowed
        _, decision = token_bucket.take(state, 0.5, 2.0, 3)
        assert not decision.allowed

    def test_refill_is_capped_at_capacity(self) -> None:
        """A long idle period fills the bucket only to its capacity."""
        state, _ = token_bucket.take(None, 0.0, 1.0, 2)
        allowed = 0
        for _ in range(5):
            state, decision = token_bucket.take(state, 1000.0, 1.0, 2)
            allowed += decision.allowed
        assert allowed == 2

    def test_sustained_rate_is_the_refill_rate(self) -> None:
        """After the burst, 10 s at 100 offers a second let through 10 s x 5/s, give or take one."""
        state = None
        allowed = 0
        for i in range(1000):
            state, decision = token_bucket.take(state, i / 100, 5.0, 4)
            allowed += decision.allowed
        assert 4 + 49 <= allowed <= 4 + 51

    def test_clock_stepping_back_does_not_refill(self) -> None:
        """A replica whose clock is behind neither adds nor removes tokens."""
        state, _ = token_bucket.take(None, 10.0, 1.0, 1)
        state, decision = token_bucket.take(state, 9.0, 1.0, 1)
        assert not decision.allowed

    def test_no_burst_holds_one_seconds_worth_and_no_rate_never_refills(self) -> None:
        assert token_bucket.capacity(5.0, 0) == 5.0
        assert token_bucket.capacity(0.2, 0) == 1.0
        state, decision = token_bucket.take(None, 0.0, 0.0, 1)
        assert decision.allowed
        _, decision = token_bucket.take(state, 1e9, 0.0, 1)
        assert not decision.allowed and decision.wait_s == float("inf")

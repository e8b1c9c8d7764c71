"""Circuit breaker and idempotency record cores, stepped with `now` from 0.0."""

from __future__ import annotations

import pytest
from dialtone.integration_gateway.core import breaker, idempotency
from dialtone.integration_gateway.core.breaker import BreakerPolicy, BreakerState
from dialtone.integration_gateway.core.idempotency import ClaimAction

POLICY = BreakerPolicy(failure_threshold=3, reset_timeout_s=10.0, trial_lease_s=5.0)


def fail(data: dict | None, now: float, times: int) -> dict | None:
    for _ in range(times):
        data = breaker.record(data, now, False, POLICY)
    return data


class TestBreaker:
    def test_opens_after_threshold_consecutive_failures(self) -> None:
        """Two failures keep it closed; the third opens it and calls are refused."""
        data = fail(None, 0.0, 2)
        assert breaker.state_of(data) is BreakerState.CLOSED
        data = fail(data, 1.0, 1)
        assert breaker.state_of(data) is BreakerState.OPEN
        _, admission = breaker.admit(data, 2.0, POLICY)
        assert not admission.allowed and admission.retry_in_s == pytest.approx(9.0)

    def test_success_resets_the_failure_count(self) -> None:
        """Failures must be consecutive: a success in between starts the count again."""
        data = fail(None, 0.0, 2)
        data = breaker.record(data, 0.0, True, POLICY)
        data = fail(data, 0.0, 2)
        assert breaker.state_of(data) is BreakerState.CLOSED

    def test_half_open_lets_one_trial_through(self) -> None:
        """After the reset timeout one call is the trial; a second one meanwhile is refused."""
        data = fail(None, 0.0, 3)
        data, first = breaker.admit(data, 10.0, POLICY)
        assert first.allowed and first.trial and first.state is BreakerState.HALF_OPEN
        data, second = breaker.admit(data, 10.1, POLICY)
        assert not second.allowed

    def test_trial_success_closes(self) -> None:
        """A successful trial closes the breaker."""
        data, _ = breaker.admit(fail(None, 0.0, 3), 10.0, POLICY)
        data = breaker.record(data, 10.2, True, POLICY)
        assert breaker.state_of(data) is BreakerState.CLOSED
        assert breaker.admit(data, 10.3, POLICY)[1].allowed

    def test_trial_failure_reopens_for_a_full_timeout(self) -> None:
        """A failed trial opens the breaker again from the moment of failure."""
        data, _ = breaker.admit(fail(None, 0.0, 3), 10.0, POLICY)
        data = breaker.record(data, 10.5, False, POLICY)
        assert breaker.state_of(data) is BreakerState.OPEN
        assert not breaker.admit(data, 20.0, POLICY)[1].allowed
        assert breaker.admit(data, 20.5, POLICY)[1].allowed

    def test_lost_trial_is_replaced_after_its_lease(self) -> None:
        """A trial whose replica never reported is replaced once its lease is over."""
        data, _ = breaker.admit(fail(None, 0.0, 3), 10.0, POLICY)
        assert not breaker.admit(data, 14.9, POLICY)[1].allowed
        assert breaker.admit(data, 15.0, POLICY)[1].trial

    def test_late_success_does_not_close_an_open_breaker(self) -> None:
        """A success of a call admitted before the breaker opened leaves it open."""
        data = fail(None, 0.0, 3)
        data = breaker.record(data, 1.0, True, POLICY)
        assert breaker.state_of(data) is BreakerState.OPEN


class TestIdempotency:
    def test_first_claim_calls_second_waits(self) -> None:
        """The first caller owns the key; a concurrent duplicate is told to wait."""
        record, first = idempotency.claim(None, 0.0, "a", 60.0)
        assert first.action is ClaimAction.CALL and record is not None
        unchanged, second = idempotency.claim(record, 0.1, "b", 60.0)
        assert second.action is ClaimAction.WAIT and unchanged is None

    def test_done_record_replays(self) -> None:
        """A completed key answers with its recorded result."""
        done = idempotency.complete({"ok": True, "body_json": "{}"})
        _, decision = idempotency.claim(done, 5.0, "c", 60.0)
        assert decision.action is ClaimAction.REPLAY and decision.result == {"ok": True, "body_json": "{}"}

    def test_abandoned_claim_is_taken_over(self) -> None:
        """A pending claim older than pending_ttl (its owner died) goes to the next caller."""
        record, _ = idempotency.claim(None, 0.0, "a", 60.0)
        taken, decision = idempotency.claim(record, 60.0, "b", 60.0)
        assert decision.action is ClaimAction.CALL and taken is not None and taken["owner"] == "b"

    def test_only_the_owner_may_release(self) -> None:
        """owned_by tells a pending record's owner from others and from done records."""
        record, _ = idempotency.claim(None, 0.0, "a", 60.0)
        assert idempotency.owned_by(record, "a") and not idempotency.owned_by(record, "b")
        assert not idempotency.owned_by(idempotency.complete({}), "a")


class TestIdempotencyFingerprint:
    def test_same_key_other_request_is_a_conflict(self) -> None:
        """A key reused for a different request neither replays nor waits: it is a conflict."""
        record, _ = idempotency.claim(None, 0.0, "a", 60.0, "fp1")
        _, waiting = idempotency.claim(record, 1.0, "b", 60.0, "fp2")
        assert waiting.action is ClaimAction.CONFLICT
        _, done = idempotency.claim(idempotency.complete({"ok": True}, "fp1"), 1.0, "b", 60.0, "fp2")
        assert done.action is ClaimAction.CONFLICT
        _, same = idempotency.claim(idempotency.complete({"ok": True}, "fp1"), 1.0, "b", 60.0, "fp1")
        assert same.action is ClaimAction.REPLAY

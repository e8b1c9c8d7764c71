"""The retry core: what is retried, backoff with jitter, Retry-After, attempts and deadline."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dialtone.integration_gateway.core.retry import (
    AttemptKind,
    AttemptOutcome,
    RetryPolicy,
    is_retryable,
    next_delay,
    parse_retry_after,
)

POLICY = RetryPolicy(max_attempts=4, backoff_initial_s=0.1, backoff_max_s=1.0, max_retry_after_s=5.0)
EPOCH = 1_700_000_000.0


def draw(value: float) -> Callable[[], float]:
    """An rng that always draws ``value``."""
    return lambda: value


def response(status: int, retry_after: str | None = None) -> AttemptOutcome:
    return AttemptOutcome(AttemptKind.RESPONSE, status, retry_after)


@pytest.mark.parametrize(("outcome", "retryable"), [
    (AttemptOutcome(AttemptKind.TIMEOUT), True),
    (AttemptOutcome(AttemptKind.CONNECT_ERROR), True),
    (response(429), True),
    (response(500), True),
    (response(503), True),
    (response(400), False),
    (response(404), False),
    (response(401), False),
    (response(409), False),
])
def test_retryable_outcomes(outcome: AttemptOutcome, retryable: bool) -> None:
    """Connect errors, timeouts, 429 and 5xx are retried; other 4xx never."""
    assert is_retryable(outcome) is retryable


def test_success_and_client_errors_stop_at_once() -> None:
    """A 2xx or a 4xx gives no further attempt."""
    assert next_delay(POLICY, response(200), 1, 0.0, 10.0, EPOCH, draw(0.5)) is None
    assert next_delay(POLICY, response(400), 1, 0.0, 10.0, EPOCH, draw(0.5)) is None


def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    """Attempt n waits between half and all of initial * 2^(n-1), capped at backoff_max_s."""
    def wait(attempt: int, jitter: float) -> float | None:
        return next_delay(POLICY, response(503), attempt, 0.0, 100.0, EPOCH, draw(jitter))

    assert wait(1, 0.0) == pytest.approx(0.05)
    assert wait(1, 1.0) == pytest.approx(0.1)
    assert wait(3, 1.0) == pytest.approx(0.4)
    big = RetryPolicy(max_attempts=20, backoff_initial_s=0.1, backoff_max_s=1.0)
    assert next_delay(big, response(503), 10, 0.0, 100.0, EPOCH, draw(1.0)) == pytest.approx(1.0)
    assert next_delay(big, response(503), 10, 0.0, 100.0, EPOCH, draw(0.0)) == pytest.approx(0.5)


def test_attempts_are_bounded() -> None:
    """After max_attempts no retry is offered, even for a retryable outcome."""
    assert next_delay(POLICY, response(500), 3, 0.0, 100.0, EPOCH, draw(0.0)) is not None
    assert next_delay(POLICY, response(500), 4, 0.0, 100.0, EPOCH, draw(0.0)) is None


def test_deadline_ends_retries() -> None:
    """A retry whose wait would reach the deadline is not made."""
    assert next_delay(POLICY, response(503), 1, 9.96, 10.0, EPOCH, draw(1.0)) is None
    assert next_delay(POLICY, response(503), 1, 9.0, 10.0, EPOCH, draw(1.0)) == pytest.approx(0.1)


def test_retry_after_seconds_replaces_backoff() -> None:
    """Retry-After: 2 on a 429 makes the wait exactly 2 s."""
    assert next_delay(POLICY, response(429, "2"), 1, 0.0, 10.0, EPOCH, draw(0.3)) == pytest.approx(2.0)


def test_retry_after_http_date() -> None:
    """An HTTP-date Retry-After gives the seconds until that date."""
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:23 GMT", EPOCH) == pytest.approx(3.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", EPOCH) == 0.0


def test_retry_after_too_long_or_past_deadline_stops() -> None:
    """A Retry-After longer than max_retry_after_s, or past the deadline, ends the retries."""
    assert next_delay(POLICY, response(503, "60"), 1, 0.0, 100.0, EPOCH, draw(0.0)) is None
    assert next_delay(POLICY, response(503, "4"), 1, 0.0, 3.0, EPOCH, draw(0.0)) is None


def test_invalid_retry_after_falls_back_to_backoff() -> None:
    """Garbage in Retry-After is ignored and the normal backoff applies."""
    assert parse_retry_after("soon", EPOCH) is None
    assert next_delay(POLICY, response(503, "soon"), 1, 0.0, 10.0, EPOCH, draw(1.0)) == pytest.approx(0.1)

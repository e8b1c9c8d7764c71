"""When to retry a backend call, and after how long.

Retried: connect errors, timeouts, 429 and 5xx. Never other 4xx: the backend
answered and would answer the same again; never a request that could not be
written. A ``Retry-After`` header (seconds or an HTTP date) replaces the backoff;
one longer than ``max_retry_after_s`` or past the deadline ends the retries
instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
from collections.abc import Callable

from dialtone.common.backoff import backoff_delay

# half of each backoff is drawn at random ("equal jitter"): retries of calls that failed together spread out
_JITTER = 0.5


class AttemptKind(enum.Enum):
    RESPONSE = "response"  # the backend answered with a status
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    REQUEST_ERROR = "request_error"  # our request could not be written: no backend was asked


@dataclasses.dataclass(frozen=True)
class AttemptOutcome:
    kind: AttemptKind
    status: int = 0
    retry_after: str | None = None  # the raw Retry-After header, if any

    @property
    def ok(self) -> bool:
        return self.kind is AttemptKind.RESPONSE and 200 <= self.status < 300


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    max_retry_after_s: float = 30.0


def is_retryable(outcome: AttemptOutcome) -> bool:
    if outcome.kind is AttemptKind.REQUEST_ERROR:
        return False  # the same request fails the same way again
    if outcome.kind is not AttemptKind.RESPONSE:
        return True
    return outcome.status == 429 or outcome.status >= 500


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date); None if absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_epoch)


def next_delay(policy: RetryPolicy, outcome: AttemptOutcome, attempt: int, now: float, deadline: float,
               now_epoch: float, rng: Callable[[], float]) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None to stop after ``attempt`` attempts.
    ``rng`` draws the backoff's jitter, in [0, 1]."""
    if outcome.ok or not is_retryable(outcome) or attempt >= policy.max_attempts:
        return None
    delay = backoff_delay(attempt, policy.backoff_initial_s, policy.backoff_max_s, _JITTER, rng)
    retry_after = parse_retry_after(outcome.retry_after, now_epoch)
    if retry_after is not None:
        if retry_after > policy.max_retry_after_s:
            return None
        delay = retry_after
    if now + delay >= deadline:
        return None
    return delay

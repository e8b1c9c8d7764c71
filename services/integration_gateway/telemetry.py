"""The integration gateway's metrics. Labels are configured service names and fixed outcomes only."""

from __future__ import annotations

from dialtone.common.metrics import counter, gauge, histogram

BACKEND_LATENCY = histogram("backend_request_seconds", "Invoke latency towards a backend, by service and outcome",
                            ["service", "outcome"])
BACKEND_OUTCOMES = counter("backend_requests_total", "Invokes by service and outcome (ok or an error kind)",
                           ["service", "outcome"])
BREAKER_STATE = gauge("backend_breaker_state", "Circuit breaker state by service: 0 closed, 1 half-open, 2 open",
                      ["service"])
RETRIES = counter("backend_retries_total", "Backend attempts beyond the first, by service", ["service"])
RATE_LIMITED = counter("backend_rate_limited_total", "Invokes refused by a rate limit, by service", ["service"])
REPLAYED = counter("backend_replayed_total", "Invokes answered from the idempotency record, by service",
                   ["service"])

BREAKER_GAUGE_VALUE = {"closed": 0, "half_open": 1, "open": 2}

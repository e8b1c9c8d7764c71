"""PII redaction in the gateway's logs, and its Prometheus metrics."""

from __future__ import annotations

import json

import pytest
from dialtone.integration_gateway.config import IntegrationGatewayConfig, RateLimitConfig, RetryConfig
from dialtone.integration_gateway.redaction import MASK, redact_json_text, redact_text, redact_value
from prometheus_client import REGISTRY

from tests.integration_gateway.backend_server import Backend, Reply
from tests.integration_gateway.conftest import GatewayFactory, call, service
from tests.integration_gateway.test_gateway_http import _closed_port


@pytest.mark.parametrize(("text", "expected"), [
    ("card 4111 1111 1111 1111 ok", f"card {MASK} ok"),
    ("card 4111-1111-1111-1111", f"card {MASK}"),
    ("call +49 30 1234567 now", f"call {MASK} now"),
    ("call (555) 123-4567", f"call {MASK}"),
    ("mail jane.doe+x@example.co.uk please", f"mail {MASK} please"),
    ("order 12345 on Tuesday", "order 12345 on Tuesday"),
    ("at 10:00 on 2026-12-01", "at 10:00 on 2026-12-01"),
])
def test_redact_text(text: str, expected: str) -> None:
    """Card numbers, phone numbers and e-mail addresses are masked; short numbers, times and dates are not."""
    assert redact_text(text) == expected


def test_redact_value_masks_configured_fields_at_any_depth() -> None:
    """Configured keys are masked wherever they appear (case-insensitive); PII inside strings too."""
    value = {"order_id": "4711", "customer": {"DOB": "1990-01-01", "note": "reach me at a@b.io"},
             "items": [{"dob": "x"}], "phone": 4915112345678}
    assert redact_value(value, ["dob"]) == {"order_id": "4711",
                                            "customer": {"DOB": MASK, "note": f"reach me at {MASK}"},
                                            "items": [{"dob": MASK}], "phone": MASK}


def test_redact_json_text_cuts_long_documents() -> None:
    """A long body is cut for the log line, and non-JSON text is still redacted."""
    assert len(redact_json_text(json.dumps({"x": "y" * 2000}), [])) <= 515
    assert redact_json_text("plain a@b.io", []) == f"plain {MASK}"


async def test_invoke_log_line_is_redacted(backend: Backend, make_gateway: GatewayFactory,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """The per-call log line has method, path, status, attempts and key, with PII and configured fields masked."""
    backend.script("/items", [Reply(201, {"email": "jane@example.com", "secret_code": "X9"})])
    gateway = make_gateway({"svc": service(backend.url)}, IntegrationGatewayConfig(redact_fields=["secret_code"]))
    payload = {"card": "4111 1111 1111 1111", "phone": "+1 555 123 4567", "secret_code": "K7", "name": "Jane"}
    with caplog.at_level("INFO", logger="dialtone.integration_gateway"):
        outcome = await gateway.invoke(call(method="create", payload=payload, key="s1:77:0"))
    assert outcome.ok
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "backend_call"]
    assert record.getMessage() == f"backend svc.create POST /items -> 201 in {outcome.latency_ms} ms, 1 attempt(s)"
    assert record.idempotency_key == "s1:77:0" and record.attempts == 1 and record.http_status == 201
    logged = json.loads(record.request)
    assert logged == {"card": MASK, "phone": MASK, "secret_code": MASK, "name": "Jane"}
    assert json.loads(record.response) == {"email": MASK, "secret_code": MASK}
    assert "4111" not in caplog.text and "jane@example.com" not in caplog.text and "K7" not in caplog.text


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_outcomes_retries_breaker_and_rate_limits(backend: Backend,
                                                                      make_gateway: GatewayFactory) -> None:
    """Outcomes and latency per service, retries, the breaker state gauge and rate-limited calls are counted."""
    backend.script("/items/42", [Reply(500)])
    gateway = make_gateway({
        "m_ok": service(backend.url, rate_limit=RateLimitConfig(rate_per_s=0.01, burst=1)),
        "m_dead": service(f"http://127.0.0.1:{_closed_port()}", retry=RetryConfig(max_attempts=1)),
    })
    before = {
        "ok": sample("dialtone_backend_requests_total", service="m_ok", outcome="ok"),
        "lat": sample("dialtone_backend_request_seconds_count", service="m_ok", outcome="ok"),
        "retries": sample("dialtone_backend_retries_total", service="m_ok"),
        "limited": sample("dialtone_backend_rate_limited_total", service="m_ok"),
    }
    assert (await gateway.invoke(call("m_ok"))).attempts == 2
    assert (await gateway.invoke(call("m_ok"))).error_kind == "rate_limited"
    assert sample("dialtone_backend_requests_total", service="m_ok", outcome="ok") == before["ok"] + 1
    assert sample("dialtone_backend_request_seconds_count", service="m_ok", outcome="ok") == before["lat"] + 1
    assert sample("dialtone_backend_retries_total", service="m_ok") == before["retries"] + 1
    assert sample("dialtone_backend_rate_limited_total", service="m_ok") == before["limited"] + 1

    assert sample("dialtone_backend_breaker_state", service="m_dead") == 0
    for _ in range(3):
        await gateway.invoke(call("m_dead"))
    assert sample("dialtone_backend_breaker_state", service="m_dead") == 2
    assert (await gateway.invoke(call("m_dead"))).error_kind == "breaker_open"
    assert sample("dialtone_backend_requests_total", service="m_dead", outcome="breaker_open") >= 1


async def test_unknown_service_is_not_a_metric_label(backend: Backend, make_gateway: GatewayFactory) -> None:
    """A caller-chosen service name never becomes a label (labels stay bounded)."""
    gateway = make_gateway({"svc": service(backend.url)})
    await gateway.invoke(call("no-such-service-xyz"))
    names = {s.labels.get("service") for m in REGISTRY.collect() for s in m.samples}
    assert "no-such-service-xyz" not in names

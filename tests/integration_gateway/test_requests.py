"""Building a method's HTTP request from a payload (pure): path template, query, body, host pinning."""

from __future__ import annotations

import re

import pytest
from dialtone.integration_gateway.config import BackendServiceConfig, MethodConfig
from dialtone.integration_gateway.errors import InvalidRequest
from dialtone.integration_gateway.requests import build_request

BASE = "https://api.example.test/v2"


def build(method: MethodConfig, payload: dict):  # noqa: ANN201 - HttpRequestSpec
    return build_request(BASE, BackendServiceConfig(base_url=BASE), "m", method, payload)


def test_path_query_and_remaining_body() -> None:
    """Path and query take their fields; a POST's body is the rest of the payload."""
    spec = build(MethodConfig(verb="POST", path="/orders/{order_id}/notes", query=["lang"]),
                 {"order_id": 7, "lang": "en", "text": "hi", "n": 2})
    assert spec.url == BASE + "/orders/7/notes" and spec.path == "/orders/7/notes"
    assert spec.query == (("lang", "en"),) and spec.json_body == {"text": "hi", "n": 2}


@pytest.mark.parametrize(("verb", "body", "expected"), [
    ("GET", "auto", None),
    ("DELETE", "auto", None),
    ("PUT", "auto", {"x": 1}),
    ("POST", "payload", {"id": "a", "x": 1}),
    ("POST", "none", None),
])
def test_body_modes(verb: str, body: str, expected: dict | None) -> None:
    """auto sends the unused fields for PUT/POST/PATCH only; payload sends all; none sends nothing."""
    spec = build(MethodConfig(verb=verb, path="/r/{id}", body=body), {"id": "a", "x": 1})  # type: ignore[arg-type]
    assert spec.json_body == expected


def test_missing_query_fields_are_left_out() -> None:
    """A query field absent from the payload (or null) is not sent."""
    assert build(MethodConfig(path="/r", query=["a", "b"]), {"b": None}).query == ()


@pytest.mark.parametrize(("value", "encoded"), [
    ("a b", "a%20b"), ("x=1;y:2", "x%3D1%3By%3A2"), ("ü", "%C3%BC"), ("...", "..."),
])
def test_path_values_stay_in_their_segment(value: str, encoded: str) -> None:
    """Every reserved character of a path value is percent-encoded, so the URL keeps its host and path."""
    assert build(MethodConfig(path="/r/{id}"), {"id": value}).url == f"{BASE}/r/{encoded}"


@pytest.mark.parametrize(("value", "character"), [
    ("../../admin", "/"), ("..\\..\\admin", "\\"), ("http://169.254.169.254/latest", "/"), ("//evil.example", "/"),
    ("@evil.example", "@"), ("user@evil.example", "@"), ("x?y=1", "?"), ("x#frag", "#"), ("..%2f..%2fadmin", "%"),
    ("42\r\nHost: evil", "\r"), ("a\x00b", "\x00"),
])
def test_path_values_that_could_leave_their_segment_are_refused(value: str, character: str) -> None:
    """SSRF attempts in a templated path field (traversal, an absolute URL, user@host, CRLF, pre-encoded
    separators) are refused with the field's name and the character, before any request exists."""
    expected = f"payload field 'id' fills a path segment and must not contain {character!r}"
    with pytest.raises(InvalidRequest, match=re.escape(expected)):
        build(MethodConfig(path="/r/{id}"), {"id": value})


@pytest.mark.parametrize(("payload", "message"), [
    ({}, "needs payload field 'id'"),
    ({"id": {"a": 1}}, "must be a string or a number"),
    ({"id": True}, "must be a string or a number"),
    ({"id": ".."}, "must not be empty, '.' or '..'"),
    ({"id": ""}, "must not be empty"),
])
def test_unusable_path_values_are_invalid_requests(payload: dict, message: str) -> None:
    """Missing, structured, boolean, empty and dot-segment values are refused with the field's name."""
    with pytest.raises(InvalidRequest, match=message):
        build(MethodConfig(path="/r/{id}"), payload)

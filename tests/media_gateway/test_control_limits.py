"""Hostile control requests (issue 21 items 1, 2, 3, 7): Originate takes only X- headers, valid
SIP URIs and bounded sizes, over gRPC and HTTP alike; HangupCall matches ids whole; the HTTP
body is strict JSON of bounded depth. Each refusal is INVALID_ARGUMENT / 400 with a short
message, no call is left behind, and the INVITE of an accepted Originate, caught on a real
loopback socket, carries each core header once."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from dialtone.media_gateway import control as control_api
from dialtone.media_gateway.control import MAX_EXTRA_HEADERS
from dialtone.media_gateway.control_http import MAX_BODY
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc

from tests.media_gateway.support import wait_until
from tests.media_gateway.test_control import Control, control  # noqa: F401 - the fixture
from tests.media_gateway.torture import open_collector

MAX_MESSAGE_CHARS = 300
TARGET = "sip:bob@127.0.0.1:5999"


def header(name: str, value: str = "v") -> common_pb2.SipHeader:
    return common_pb2.SipHeader(name=name, value=value)


# (what, OriginateRequest fields, fragment of the message)
BAD_ORIGINATES = [
    ("no user, host or port", {"to_uri": "sip:@;?"}, "not a SIP URI"),
    ("port 0", {"to_uri": "sip:bob@127.0.0.1:0"}, "port '0' is not 1-65535"),
    ("port 65536", {"to_uri": "sip:bob@127.0.0.1:65536"}, "port '65536' is not 1-65535"),
    ("no such IPv4", {"to_uri": "sip:bob@256.1.1.1"}, "not a host name or IP address"),
    ("URI headers", {"to_uri": "sip:bob@h?Call-ID=x"}, "not a SIP URI"),
    ("newline after the URI", {"to_uri": "sip:bob@h\n"}, "not a host name"),
    ("1 MB to_uri", {"to_uri": "sip:" + "b" * 1_000_000}, "to_uri is 1000004 characters; the limit is 256"),
    ("1 MB dialog", {"to_uri": TARGET, "dialog": "d" * 1_000_000}, "dialog is 1000000 characters"),
    ("dialog with a newline", {"to_uri": TARGET, "dialog": "survey\n"}, "control characters"),
    ("1 MB caller_id", {"to_uri": TARGET, "caller_id": "1" * 1_000_000}, "caller_id is 1000000 characters"),
    ("non-ASCII caller_id", {"to_uri": TARGET, "caller_id": "\u00b2"}, "caller_id"),
    ("Content-Length", {"to_uri": TARGET, "headers": [header("Content-Length", "0")]}, "must be X-"),
    ("Call-ID", {"to_uri": TARGET, "headers": [header("Call-ID", "dup@h")]}, "must be X-"),
    ("Max-Forwards", {"to_uri": TARGET, "headers": [header("Max-Forwards", "1")]}, "must be X-"),
    ("name with a newline", {"to_uri": TARGET, "headers": [header("X-A\n")]}, "must be X-"),
    ("value with CRLF", {"to_uri": TARGET, "headers": [header("X-A", "1\r\nVia: x")]}, "one line"),
    ("value with NUL", {"to_uri": TARGET, "headers": [header("X-A", "a\x00b")]}, "control characters"),
    ("10,000 headers", {"to_uri": TARGET, "headers": [header(f"X-H{i}") for i in range(10_000)]},
     "10000 headers; the limit is 32"),
    ("long value", {"to_uri": TARGET, "headers": [header("X-A", "v" * 600)]}, "600 characters; the limit is 512"),
    ("headers too large together", {"to_uri": TARGET, "headers": [header(f"X-{i}", "v" * 500) for i in range(5)]},
     "the limit is 2048"),
]


def as_json(fields: dict) -> dict:
    body = {k: v for k, v in fields.items() if k != "headers"}
    if "headers" in fields:
        body["headers"] = {h.name: h.value for h in fields["headers"]}
    return body


async def test_bad_originates_are_refused_over_grpc_and_http(control: Control) -> None:  # noqa: F811
    """Every bad Originate is INVALID_ARGUMENT over gRPC and 400 over HTTP, with a short message
    naming the problem, and no call is created by any of them."""
    async with grpc.aio.insecure_channel(control.grpc_address) as channel, \
            httpx.AsyncClient(base_url=control.http, timeout=10) as client:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        for what, fields, fragment in BAD_ORIGINATES:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Originate(pb.OriginateRequest(**fields), timeout=10)
            details = refused.value.details() or ""
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (what, details[:200])
            assert fragment in details and len(details) < MAX_MESSAGE_CHARS, (what, details[:400])
            if what == "10,000 headers":
                continue  # a JSON object has unique names: the same count over HTTP is below
            body = json.dumps(as_json(fields)).encode()
            reply = await client.post("/v1/calls", content=body, headers={"content-type": "application/json"})
            error = reply.json()["error"]
            expected = fragment if len(body) <= MAX_BODY else f"body over {MAX_BODY} bytes"
            assert reply.status_code == 400 and expected in error and len(error) < MAX_MESSAGE_CHARS, (what, error)
        many = await client.post("/v1/calls", json={"to_uri": TARGET,
                                                    "headers": {f"X-H{i}": "v" for i in range(2000)}})
        assert many.status_code == 400 and "2000 headers; the limit is 32" in many.json()["error"]
        assert (await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls == []
    assert not control.app.calls.calls  # type: ignore[union-attr]


async def test_hangup_matches_the_session_id_whole(control: Control) -> None:  # noqa: F811
    """"abc\\n" is not the id "abc": INVALID_ARGUMENT over gRPC, 400 over HTTP; a 1 MB id is quoted short."""
    async with grpc.aio.insecure_channel(control.grpc_address) as channel, \
            httpx.AsyncClient(base_url=control.http, timeout=10) as client:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        for session_id in ("abc\n", "abc\r\n", "x" * 1_000_000):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.HangupCall(pb.HangupCallRequest(session_id=session_id), timeout=5)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "is invalid" in refused.value.details() and len(refused.value.details()) < MAX_MESSAGE_CHARS
        assert (await client.delete("/v1/calls/abc%0A")).status_code == 400
        assert (await client.delete("/v1/calls/abc")).status_code == 404


BAD_BODIES = [
    ("30,000 levels", b"[" * 30_000 + b"]" * 30_000, "nested deeper than 64 levels"),
    ("deep inside an object", b'{"to_uri": "sip:b@h", "headers": ' + b'{"a":' * 100 + b"1" + b"}" * 101,
     "nested deeper than 64 levels"),
    ("NaN timeout", b'{"to_uri": "sip:b@h", "ring_timeout_s": NaN}', "NaN is not a JSON number"),
    ("not UTF-8", b'{"to_uri": "sip:b@h\xff"}', "not JSON"),
    ("a list as dialog", b'{"to_uri": "sip:b@h", "dialog": ["a"]}', "dialog must be a string"),
    ("a number as to_uri", b'{"to_uri": 5}', "to_uri must be a string"),
    ("an object as a header value", b'{"to_uri": "sip:b@h", "headers": {"X-A": {"b": 1}}}', "name: string"),
    ("a list as headers", b'{"to_uri": "sip:b@h", "headers": ["X-A"]}', "name: string"),
]


async def test_bad_http_bodies_are_400_not_500(control: Control) -> None:  # noqa: F811
    """The issue's 60 kB of nested brackets was a 500; it and other hostile bodies are 400 with a
    clear message, and the control API answers normally afterwards."""
    async with httpx.AsyncClient(base_url=control.http, timeout=10) as client:
        for what, body, fragment in BAD_BODIES:
            reply = await client.post("/v1/calls", content=body, headers={"content-type": "application/json"})
            error = reply.json()["error"]
            assert reply.status_code == 400 and fragment in error and len(error) < MAX_MESSAGE_CHARS, (what, error)
        assert (await client.get("/v1/calls")).json() == {"calls": []}


async def test_accepted_originate_sends_each_core_header_once(control: Control) -> None:  # noqa: F811
    """The INVITE of an Originate with X- headers, caught on a loopback UDP socket, has one
    Content-Length, one Call-ID and one Max-Forwards, and the X- headers as sent."""
    collector, port = await open_collector()
    try:
        async with grpc.aio.insecure_channel(control.grpc_address) as channel:
            stub = pb_grpc.MediaGatewayControlStub(channel)
            reply = await stub.Originate(pb.OriginateRequest(
                to_uri=f"sip:bob@127.0.0.1:{port}", ring_timeout_s=5,
                headers=[header("X-Campaign", "q4"), header("x-tenant", "caf\u00e9 42")]), timeout=10)
            await wait_until(lambda: any(d.startswith(b"INVITE ") for d in collector.received), 10, "INVITE")
            assert (await stub.HangupCall(pb.HangupCallRequest(session_id=reply.session_id), timeout=5)).found
    finally:
        collector.transport.close()
    invite = next(d for d in collector.received if d.startswith(b"INVITE "))
    head = invite.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    names = [line.split(":", 1)[0].strip().lower() for line in head.split("\r\n")[1:]]
    long_names = {"l": "content-length", "i": "call-id"}
    names = [long_names.get(name, name) for name in names]
    for core in ("content-length", "call-id", "max-forwards", "via", "from", "to", "cseq"):
        assert names.count(core) == 1, (core, head)
    assert "\r\nX-Campaign: q4\r\n" in head and "\r\nx-tenant: caf\u00e9 42\r\n" in head
    assert reply.call_id in head


@pytest.mark.parametrize("uri", ["sip:bob@127.0.0.1", "sip:bob@127.0.0.1:5060", "sips:+1555%20x@pbx.example.com.",
                                 "sip:bob@[::1]:5070", "sip:pbx_1.lan:5080;transport=tcp", "sip:1001@h;lr;user=phone"])
def test_usable_targets_are_accepted(uri: str) -> None:
    control_api.check_target(uri)


def test_x_headers_within_the_bounds_are_accepted() -> None:
    control_api.check_headers([(f"X-H{i}", "v" * 50) for i in range(MAX_EXTRA_HEADERS)])
    control_api.check_headers([("x-tenant", "caf\u00e9\tbar"), ("X-Campaign", "")])

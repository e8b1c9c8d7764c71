"""The hostile requests issue 21 found, per RPC and for the control HTTP API: explicit examples of
the fuzz suite (run before the generated ones, every time) and the kinds of the memory test.

Each builder takes a tag that makes its session ids its own (``build("ex")``, ``build(f"m{i}")``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import integration_gateway_pb2 as ig
from dialtone.v1 import media_gateway_pb2 as mg
from dialtone.v1 import speech_gateway_pb2 as spb

MEGABYTE_TEXT = "a" * (1 << 20)  # the size where it gave one
OVERSIZED_TEXT = MEGABYTE_TEXT[:200_000]  # far over every field's limit, under every message limit
# Far from every listening port: an Originate to it that is accepted rings until it is hung up.
UNANSWERED_URI = "sip:bob@127.0.0.1:9"


def nested_json(depth: int, opener: str = "[") -> str:
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


DEEP_JSON = nested_json(30_000)  # 60 kB (item 2)
TEN_THOUSAND_HEADERS = mg.OriginateRequest(to_uri=UNANSWERED_URI, headers=[
    cpb.SipHeader(name=f"X-H{n}", value="v") for n in range(10_000)])  # item 7


def action(session_id: str, key: str, payload: str = '{"order_id": "12345"}', service: str = "orders",
           timeout_ms: int = 0) -> ig.ActionRequest:
    return ig.ActionRequest(session_id=session_id, idempotency_key=key, service=service, method="get_status",
                            payload_json=payload, timeout_ms=timeout_ms)


def call_info(**fields: Any) -> cpb.CallInfo:
    return cpb.CallInfo(**{"caller": "sip:alice@127.0.0.1", "callee": "1000", **fields})


def call_started(session_id: str, **fields: Any) -> rpb.SpeechEvent:
    return rpb.SpeechEvent(session_id=session_id, seq=1, call_started=rpb.CallStarted(call=call_info(**fields)))


def call_start(session_id: str, resume: bool = False, **fields: Any) -> spb.MediaUplink:
    return spb.MediaUplink(session_id=session_id, seq=1, call_start=spb.CallStart(
        call=call_info(**fields), sample_rate=16000, resume=resume))


Builder = Callable[[str], Any]  # tag -> a request (unary) or the messages of one stream

# Refused requests, by RPC (the names of tests/fuzz/rpcs.py RPCS).
REFUSED: dict[str, list[tuple[str, Builder]]] = {
    "invoke": [
        ("session id with a trailing newline", lambda t: action(f"nl{t}\n", f"nl{t}\n:0:0")),  # item 1
        ("1 MB idempotency key", lambda t: action(f"mb{t}", f"mb{t}:{MEGABYTE_TEXT}:0")),  # item 3
        ("30,000-deep payload", lambda t: action(f"deep{t}", f"deep{t}:1:0", DEEP_JSON)),  # item 2
        ("unknown service, 200 kB name", lambda t: action(f"us{t}", f"us{t}:1:0", service=OVERSIZED_TEXT)),
    ],
    "hangup_call": [
        ("HangupCall id with a trailing newline", lambda t: mg.HangupCallRequest(session_id=f"abc{t}\n")),  # item 1
    ],
    "originate": [  # item 7
        ("Originate with core SIP headers", lambda t: mg.OriginateRequest(to_uri=UNANSWERED_URI, headers=[
            cpb.SipHeader(name="Content-Length", value="0"), cpb.SipHeader(name="Call-ID", value=f"x{t}"),
            cpb.SipHeader(name="Max-Forwards", value="1")])),
        ("Originate to sip:@;?", lambda t: mg.OriginateRequest(to_uri="sip:@;?")),
        ("Originate with 10,000 headers", lambda t: TEN_THOUSAND_HEADERS),
        ("Originate with a 200 kB caller id", lambda t: mg.OriginateRequest(to_uri=UNANSWERED_URI,
                                                                           caller_id=OVERSIZED_TEXT)),
    ],
    "converse": [
        ("CallStarted with a 1 MB caller and header", lambda t: [call_started(  # item 9
            f"big{t}", caller=MEGABYTE_TEXT[:-10], headers=[cpb.SipHeader(name="X-Big", value="b" * 1000)])]),
        ("CallStarted with a 200 kB dialog", lambda t: [call_started(f"dlg{t}", dialog=OVERSIZED_TEXT)]),  # item 3
        ("resume of an unknown session", lambda t: [rpb.SpeechEvent(
            session_id=f"unknown{t}", resume=rpb.Resume(last_event_seq=3, last_action_seq=3))]),
        ("session id with a trailing newline", lambda t: [call_started(f"nl{t}\n")]),
        ("first event not call_started", lambda t: [rpb.SpeechEvent(
            session_id=f"first{t}", seq=1, dtmf=cpb.Dtmf(digit="1"))]),
    ],
    "stream_call": [  # item 4
        ("no session id", lambda t: [call_start("")]),
        ("CallStart with a 1 MB dialog", lambda t: [call_start(f"sdlg{t}", dialog=MEGABYTE_TEXT)]),
        ("resume of an unknown session", lambda t: [call_start(f"sunknown{t}", resume=True)]),
        ("DTMF key X", lambda t: [call_start(f"sx{t}"), spb.MediaUplink(
            session_id=f"sx{t}", seq=2, dtmf=cpb.Dtmf(digit="X"))]),
    ],
}

# Valid requests sent again and again: none may open a backend's breaker for the others (item 1).
REPEATED: dict[str, list[tuple[str, Builder, int]]] = {
    "invoke": [("a 1 ms deadline, six times", lambda t: action(f"ms{t}", f"ms{t}:1:0", timeout_ms=1), 6)],
}

# Streams of a call under way that the client abandons (item 5): (builder, ending, linger_s).
ABANDONED: dict[str, list[tuple[Builder, str, float]]] = {
    "converse": [(lambda t: [call_started(f"ab{t}")], "close channel", 0.05),
                 (lambda t: [call_started(f"ac{t}")], "cancel", 0.05)],
    "stream_call": [(lambda t: [call_start(f"sab{t}")], "close channel", 0.05),
                    (lambda t: [call_start(f"sac{t}")], "cancel", 0.05),
                    (lambda t: [call_start(f"sau{t}", resume=True)], "close channel", 0.05)],
}

# Control HTTP API bodies refused with 400 (item 2; a field over its limit).
HTTP_REFUSED: list[tuple[str, Callable[[str], bytes]]] = [
    ("control HTTP body 30,000 deep", lambda t: DEEP_JSON.encode()),
    ("control HTTP 60 kB to_uri", lambda t: json.dumps({"to_uri": "sip:" + "a" * 60_000}).encode()),
]

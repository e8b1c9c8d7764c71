"""Every public RPC of the four services: how to generate its requests, how to send them, and
what an acceptable answer is.

An answer is acceptable when it is OK or one of the specific refusals below, with a short message;
never UNKNOWN, INTERNAL, DEADLINE_EXCEEDED (a hang) or UNAVAILABLE (every downstream is up). A
streaming RPC is sent a short sequence of messages and then either half-closed (its status is
checked), cancelled, or abandoned by closing the channel (what is left behind is checked by
``Stack.assert_clean``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import integration_gateway_pb2 as ig
from dialtone.v1 import media_gateway_pb2 as mg
from dialtone.v1 import speech_gateway_pb2 as spb
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from tests.fuzz import strategies as gen
from tests.fuzz.issue21 import nested_json
from tests.fuzz.stack import Stack

PROTO_MODULES = (cpb, rpb, ig, mg, spb)
MAX_DETAILS = 512
UNARY_DEADLINE_S = 20.0
STREAM_DEADLINE_S = 12.0
FIRST_REPLY_WAIT_S = 1.0
REFUSALS = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                      grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE,
                      grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED})
DTMF_KEYS = "0123456789*#ABCD"
_SIZE_REFUSAL = re.compile(r"Received message larger than max \(\d+ vs\. (\d+)\)")


def public_rpcs() -> set[str]:
    """Every RPC in proto/dialtone/v1, as /package.Service/Method."""
    return {f"/{service.full_name}/{method.name}"
            for module in PROTO_MODULES for service in module.DESCRIPTOR.services_by_name.values()
            for method in service.methods}


@dataclasses.dataclass
class Answer:
    code: grpc.StatusCode
    details: str
    replies: list[Message]


def check_status(answer: Answer, sent: list[Message]) -> None:
    """OK, or a specific refusal with a short message."""
    code, details = answer.code, answer.details or ""
    assert code == grpc.StatusCode.OK or code in REFUSALS, f"{code.name}: {gen.brief(details)}"
    assert len(details) <= MAX_DETAILS, f"{code.name} with a {len(details)}-character message: {gen.brief(details)}"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Only as gRPC's own refusal of a message over the server's size limit: otherwise it hides the
        # service's answer (an error message too long for the trailers, issue 21 item 3).
        limit = _SIZE_REFUSAL.search(details)
        largest = max((m.ByteSize() for m in sent), default=0)
        assert limit is not None and largest > int(limit.group(1)), \
            f"RESOURCE_EXHAUSTED for a {largest}-byte message: {gen.brief(details)}"


# -- sending --------------------------------------------------------------------------------------
def unary(stack: Stack, service: str, method: MethodDescriptor, request: Message) -> Answer:
    call = stack.channel(service).unary_unary(
        path(method), request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=GetMessageClass(method.output_type).FromString)
    try:
        reply = call(request, timeout=UNARY_DEADLINE_S)
    except grpc.RpcError as exc:
        return Answer(exc.code(), exc.details() or "", [])
    return Answer(grpc.StatusCode.OK, "", [reply])


def stream(stack: Stack, service: str, method: MethodDescriptor, messages: list[Message], ending: str = "half-close",
           linger_s: float = 0.0, shared: bool = False) -> Answer | None:
    """Send ``messages`` on one stream, then end it as ``ending`` says: "half-close" (the answer is
    returned), or "cancel" / "close channel" ``linger_s`` after the first reply (or after
    ``FIRST_REPLY_WAIT_S`` without one), the client having neither half-closed nor cancelled before
    (None is returned). The stream has a channel of its own unless ``shared`` (then it must end by
    half-closing)."""
    channel = stack.channel(service) if shared else stack.new_channel(service)
    call = channel.stream_stream(path(method), request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=GetMessageClass(method.output_type).FromString)
    hold = threading.Event()

    def requests() -> Iterator[Message]:
        yield from messages
        if ending != "half-close":
            hold.wait(STREAM_DEADLINE_S)  # the client neither half-closes nor goes on writing

    replies: list[Message] = []
    responses = call(requests(), timeout=STREAM_DEADLINE_S)
    abandon = {"cancel": responses.cancel, "close channel": channel.close}.get(ending)
    timers: list[threading.Timer] = []

    def abandon_after(delay: float) -> None:
        for timer in timers:
            timer.cancel()
        if abandon is not None:
            timers.append(threading.Timer(delay, abandon))
            timers[-1].start()

    abandon_after(FIRST_REPLY_WAIT_S + linger_s)
    try:
        for reply in responses:
            if not replies:
                abandon_after(linger_s)  # the call is under way: the stream is abandoned in the middle of it
            replies.append(reply)
        answer = Answer(grpc.StatusCode.OK, "", replies)
    except grpc.RpcError as exc:
        answer = Answer(exc.code(), exc.details() or "", replies)
    except ValueError:  # the channel was closed under the iterator
        answer = Answer(grpc.StatusCode.CANCELLED, "", replies)
    finally:
        hold.set()
        for timer in timers:
            timer.cancel()
        if not shared:
            channel.close()
    return answer if ending == "half-close" else None


def path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


# -- plausible values -----------------------------------------------------------------------------
session_ids = st.from_regex(r"fz-[a-z0-9]{8,12}", fullmatch=True)
order_ids = st.from_regex(r"[0-9]{4,8}", fullmatch=True)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | gen.short_text
json_values = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(gen.short_text, inner, max_size=4), max_leaves=12)


deep_json = st.builds(nested_json, st.sampled_from([63, 64, 65, 1000, 30_000]), st.sampled_from(["[", "{"]))
payload_texts = gen.weighted(
    (order_ids.map(lambda order: json.dumps({"order_id": order})), 3),
    (json_values.map(json.dumps), 2),
    (deep_json, 1),
    (st.sampled_from(['{"order_id": 1e999}', '{"order_id": NaN}', '{"order_id": "\\ud800"}', "{", "[]", "1",
                      '{"date": "2024-05-01", "time": "10:00"}', '{"order_id": "../x"}', '{"order_id": ""}']), 1),
)


def hints(stack: Stack) -> dict[str, st.SearchStrategy[Any]]:
    dead = f"127.0.0.1:{stack.dead_sip_port}"
    return {
        "session_id": session_ids,
        "idempotency_key": st.builds(lambda s, seq, i: f"{s}:{seq}:{i}", session_ids, st.integers(0, 99),
                                     st.integers(0, 9)),
        "service": st.sampled_from(["orders", "appointments"]),
        "method": st.sampled_from(["get_status", "book"]),
        "payload_json": payload_texts,
        "timeout_ms": st.sampled_from([0, 1, 5, 2000, 600_000, 600_001]),
        "to_uri": st.sampled_from([f"sip:bob@{dead}", f"sips:bob@{dead}", f"sip:{dead}", "sip:@;?",
                                   f"sip:bob@{dead};transport=tcp", f"sip:bob@[::1]:{stack.dead_sip_port}",
                                   "sip:bob@127.0.0.1:99999", "tel:+15551234"]),
        "caller_id": st.sampled_from(["1001", "+15551234", "alice.b-c_d"]),
        "ring_timeout_s": st.sampled_from([0, 1, 600, 601]),
        "name": st.sampled_from(["X-Campaign", "X-Queue", "Content-Length", "Call-ID", "Max-Forwards", "Via",
                                 "From", "x-a", "X Bad", ""]),
        "value": st.sampled_from(["q4", "booking", "0", "a\r\nVia: evil"]),
        "caller": st.sampled_from(["sip:alice@127.0.0.1", "1001"]),
        "callee": st.sampled_from(["1000", "2000", "9999"]),
        "dialog": st.sampled_from(["", "order_status", "dtmf_menu", "appointment_booking", "nope"]),
        "call_id": st.from_regex(r"[a-f0-9]{8}@127\.0\.0\.1", fullmatch=True),
        "digit": st.sampled_from([*DTMF_KEYS, "X", "12", "", "a"]),
        "text": st.sampled_from(["my order is 12345", "agent", "zero", "yes", ""]),
        "confidence": st.sampled_from([0.0, 0.5, 1.0, -0.1, 7.0, float("nan")]),
        "utterance_id": st.builds(lambda s, n: f"{s}:{n}:1", session_ids, st.integers(0, 9)),
        "reason": st.sampled_from(["caller_hangup", "barge_in", ""]),
        "seq": st.integers(0, 12),
        "pcm": st.sampled_from([bytes(640), bytes(range(256)) * 2 + bytes(128)]),
        "sample_rate": st.sampled_from([0, 16000, 8000]),
        "playback_sample_rate": st.sampled_from([0, 8000, 16000, 48000, 44]),
        "timestamp_ms": st.integers(0, 10_000),
    }


# -- valid messages, for crossing with generated ones --------------------------------------------------
def call_info(hint: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[cpb.CallInfo]:
    return st.builds(cpb.CallInfo, caller=hint["caller"], callee=hint["callee"],
                     dialog=st.sampled_from(["", "order_status", "dtmf_menu"]), call_id=hint["call_id"],
                     channel=st.just(cpb.CHANNEL_SIP), direction=st.just(cpb.DIRECTION_INBOUND),
                     headers=st.lists(st.builds(cpb.SipHeader, name=st.just("X-Queue"), value=st.just("booking")),
                                      max_size=1))


def valid_invoke(hint: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Message]:
    def build(session: str, seq: int, booking: bool, order: str, timeout_ms: int) -> ig.ActionRequest:
        service, method, payload = (("appointments", "book", {"date": "2024-05-01", "time": "10:00"}) if booking
                                    else ("orders", "get_status", {"order_id": order}))
        return ig.ActionRequest(session_id=session, idempotency_key=f"{session}:{seq}:0", service=service,
                                method=method, payload_json=json.dumps(payload), timeout_ms=timeout_ms)

    # A caller may ask for any deadline, a millisecond included: its expiry says nothing of the backend.
    return st.builds(build, session_ids, st.integers(1, 99), st.booleans(), order_ids,
                     st.sampled_from([0, 0, 0, 1, 5, 2000]))


def valid_originate(hint: dict[str, st.SearchStrategy[Any]], stack: Stack) -> st.SearchStrategy[Message]:
    return st.builds(mg.OriginateRequest, to_uri=st.just(f"sip:bob@127.0.0.1:{stack.dead_sip_port}"),
                     dialog=st.just("order_status"), caller_id=st.just("1001"),
                     headers=st.lists(st.builds(cpb.SipHeader, name=st.just("X-Campaign"), value=st.just("q4")),
                                      max_size=1),
                     ring_timeout_s=st.integers(0, 30))


def converse_first(hint: dict[str, st.SearchStrategy[Any]]) -> Callable[[str], st.SearchStrategy[Message]]:
    def first(session: str) -> st.SearchStrategy[Message]:
        started = st.builds(lambda call: rpb.SpeechEvent(session_id=session, seq=1,
                                                         call_started=rpb.CallStarted(call=call)), call_info(hint))
        resumed = st.builds(lambda e, a: rpb.SpeechEvent(session_id=session, resume=rpb.Resume(
            last_event_seq=e, last_action_seq=a)), st.integers(0, 5), st.integers(0, 5))
        return gen.weighted((started, 3), (resumed, 1))
    return first


def converse_later(hint: dict[str, st.SearchStrategy[Any]]) -> Callable[[str], st.SearchStrategy[Message]]:
    def later(session: str) -> st.SearchStrategy[Message]:
        def event(seq: int, **payload: Any) -> rpb.SpeechEvent:
            return rpb.SpeechEvent(session_id=session, seq=seq, **payload)
        seqs = st.integers(2, 9)
        return st.one_of(
            st.builds(lambda s, t: event(s, transcript=rpb.Transcript(text=t, is_final=True, confidence=0.9)),
                      seqs, hint["text"]),
            st.builds(lambda s, d: event(s, dtmf=cpb.Dtmf(digit=d)), seqs, st.sampled_from(DTMF_KEYS)),
            st.builds(lambda s: event(s, speech_started=rpb.SpeechStarted(timestamp_ms=100)), seqs),
            st.builds(lambda s, u: event(s, playback_finished=cpb.PlaybackFinished(utterance_id=u)), seqs,
                      hint["utterance_id"]),
            st.builds(lambda s: event(s, call_ended=rpb.CallEnded(reason="caller_hangup")), seqs),
        )
    return later


def stream_call_first(hint: dict[str, st.SearchStrategy[Any]]) -> Callable[[str], st.SearchStrategy[Message]]:
    def first(session: str) -> st.SearchStrategy[Message]:
        return st.builds(lambda call, rate, resume: spb.MediaUplink(session_id=session, seq=1, call_start=spb.CallStart(
            call=call, sample_rate=16000, playback_sample_rate=rate, resume=resume)),
            call_info(hint), st.sampled_from([0, 8000, 16000]), st.sampled_from([False, False, False, True]))
    return first


def stream_call_later(hint: dict[str, st.SearchStrategy[Any]]) -> Callable[[str], st.SearchStrategy[Message]]:
    def later(session: str) -> st.SearchStrategy[Message]:
        def uplink(seq: int, **payload: Any) -> spb.MediaUplink:
            return spb.MediaUplink(session_id=session, seq=seq, **payload)
        seqs = st.integers(2, 9)
        return st.one_of(
            st.builds(lambda s, pcm, ts: uplink(s, audio=spb.AudioFrame(pcm=pcm, timestamp_ms=ts)), seqs,
                      hint["pcm"], st.integers(0, 400)),
            st.builds(lambda s, d: uplink(s, dtmf=cpb.Dtmf(digit=d, duration_ms=100)), seqs,
                      st.sampled_from(DTMF_KEYS)),
            st.builds(lambda s, u: uplink(s, playback_started=cpb.PlaybackStarted(utterance_id=u)), seqs,
                      hint["utterance_id"]),
            st.builds(lambda s, u: uplink(s, playback_finished=cpb.PlaybackFinished(utterance_id=u)), seqs,
                      hint["utterance_id"]),
            st.builds(lambda s: uplink(s, call_end=spb.CallEnd(reason="caller_hangup")), seqs),
        )
    return later


@dataclasses.dataclass(frozen=True)
class Rpc:
    service: str  # the process that serves it
    method: MethodDescriptor
    requests: Callable[[Stack], st.SearchStrategy[Any]]  # a message, or a list of them for a stream


def _method(module: Any, service: str, name: str) -> MethodDescriptor:
    return module.DESCRIPTOR.services_by_name[service].methods_by_name[name]


def _unary(module: Any, service: str, name: str, valid: Callable[..., st.SearchStrategy[Message]] | None = None,
           with_stack: bool = False) -> Callable[[Stack], st.SearchStrategy[Any]]:
    def requests(stack: Stack) -> st.SearchStrategy[Any]:
        hint = hints(stack)
        template = None if valid is None else (valid(hint, stack) if with_stack else valid(hint))
        return gen.requests(_method(module, service, name).input_type, hint, template)
    return requests


def _streaming(module: Any, service: str, name: str, first: Callable[..., Any], later: Callable[..., Any]
               ) -> Callable[[Stack], st.SearchStrategy[Any]]:
    def requests(stack: Stack) -> st.SearchStrategy[Any]:
        hint = hints(stack)
        generated = gen.messages(_method(module, service, name).input_type, hint)
        return gen.sequences(session_ids, first(hint), later(hint), generated)
    return requests


RPCS = {
    "invoke": Rpc("integration-gateway", _method(ig, "IntegrationGateway", "Invoke"),
                  _unary(ig, "IntegrationGateway", "Invoke", valid_invoke)),
    "originate": Rpc("media-gateway", _method(mg, "MediaGatewayControl", "Originate"),
                     _unary(mg, "MediaGatewayControl", "Originate", valid_originate, with_stack=True)),
    "list_calls": Rpc("media-gateway", _method(mg, "MediaGatewayControl", "ListCalls"),
                      _unary(mg, "MediaGatewayControl", "ListCalls")),
    "hangup_call": Rpc("media-gateway", _method(mg, "MediaGatewayControl", "HangupCall"),
                       _unary(mg, "MediaGatewayControl", "HangupCall")),
    "converse": Rpc("conversation-runtime", _method(rpb, "ConversationRuntime", "Converse"),
                    _streaming(rpb, "ConversationRuntime", "Converse", converse_first, converse_later)),
    "stream_call": Rpc("speech-gateway", _method(spb, "SpeechGateway", "StreamCall"),
                       _streaming(spb, "SpeechGateway", "StreamCall", stream_call_first, stream_call_later)),
}

abandon_endings = st.sampled_from(["close channel", "cancel"])
linger_s = st.sampled_from([0.0, 0.05, 0.2])

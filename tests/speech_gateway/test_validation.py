"""What StreamCall refuses before anything reaches the runtime (pure checks), and which runtime
statuses end a call instead of being resumed: the classification, and RuntimeLink against a real
grpc.aio runtime stand-in that refuses."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from dialtone.common.errors import InvalidArgument
from dialtone.speech_gateway import validation
from dialtone.speech_gateway.runtime_link import RuntimeLink, RuntimeRefused, RuntimeUnavailable, is_refusal
from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import speech_gateway_pb2 as pb
from prometheus_client import REGISTRY

SID = "call-1"
HUGE = "x" * 1_000_000


def start(**call) -> pb.MediaUplink:
    return pb.MediaUplink(session_id=SID, seq=1, call_start=pb.CallStart(
        call=cpb.CallInfo(**call), sample_rate=16000, playback_sample_rate=8000))


def refusal(check, *args) -> str:
    with pytest.raises(InvalidArgument) as err:
        check(*args)
    message = str(err.value)
    assert len(message) < 200, message  # never the whole value
    return message


def test_a_plain_call_start_passes() -> None:
    validation.check_call_start(start(caller="sip:alice@127.0.0.1", callee="100", dialog="order_status",
                                      call_id="c1", headers=[cpb.SipHeader(name="X-Account", value="42")]))


@pytest.mark.parametrize("call, fragment", [
    ({"dialog": HUGE}, "CallInfo.dialog is 1000000 characters; the limit is 128"),
    ({"caller": HUGE}, "CallInfo.caller is 1000000 characters"),
    ({"callee": HUGE}, "CallInfo.callee is 1000000 characters"),
    ({"call_id": HUGE}, "CallInfo.call_id is 1000000 characters"),
    ({"headers": [cpb.SipHeader(name=HUGE, value="1")]}, "CallInfo.headers name is 1000000 characters"),
    ({"headers": [cpb.SipHeader(name="X-Big", value=HUGE)]}, "CallInfo.headers 'X-Big' value is 1000000"),
    ({"headers": [cpb.SipHeader(name="X-A", value="1")] * 129}, "129 headers; the limit is 128"),
    ({"headers": [cpb.SipHeader(name=f"X-{i}", value="v" * 4000) for i in range(20)]},
     "characters in all; the limit is 65536"),
])
def test_oversized_call_info_is_refused_by_its_size(call, fragment) -> None:
    assert fragment in refusal(validation.check_call_start, start(**call))


@pytest.mark.parametrize("session_id, fragment", [
    ("", "session_id is required"), ("a\n", "is invalid"), (HUGE, "'xxxx"), ("a b", "is invalid")])
def test_stream_session_id_must_be_valid(session_id, fragment) -> None:
    message = start()
    message.session_id = session_id
    assert fragment in refusal(validation.check_call_start, message)


@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_every_dtmf_key_passes(digit) -> None:
    validation.check_uplink(pb.MediaUplink(dtmf=cpb.Dtmf(digit=digit)), "dtmf")


@pytest.mark.parametrize("digit", ["X", "", "a", "11", "#*", "\n", HUGE])
def test_other_dtmf_digits_are_refused(digit) -> None:
    message = refusal(validation.check_uplink, pb.MediaUplink(dtmf=cpb.Dtmf(digit=digit)), "dtmf")
    assert message.startswith("Dtmf: digit") and "is not one of 0-9, *, #, A-D" in message


@pytest.mark.parametrize("payload, fragment", [
    ({"audio": pb.AudioFrame(pcm=b"\0" * 100)}, "pcm must be 640 bytes (20 ms of 16 kHz s16le), got 100"),
    ({"audio": pb.AudioFrame(pcm=b"\0" * 6400)}, "got 6400"),
    ({"audio": pb.AudioFrame(pcm=b"\0" * 640, timestamp_ms=2**63)}, "more than 24 hours of call time"),
    ({"playback_started": cpb.PlaybackStarted(utterance_id=HUGE)}, "PlaybackStarted.utterance_id is 1000000"),
    ({"playback_finished": cpb.PlaybackFinished(utterance_id=HUGE)}, "PlaybackFinished.utterance_id is 1000000"),
    ({"transfer_result": cpb.TransferResult(target_uri=HUGE)}, "TransferResult.target_uri is 1000000"),
    ({"transfer_result": cpb.TransferResult(reason=HUGE)}, "TransferResult.reason is 1000000"),
    ({"call_end": pb.CallEnd(reason=HUGE)}, "CallEnd.reason is 1000000"),
    ({"call_start": pb.CallStart()}, "call_start may only be the first message"),
    ({}, "message has no payload"),
])
def test_bad_messages_after_the_first_are_refused(payload, fragment) -> None:
    message = pb.MediaUplink(session_id=SID, **payload)
    assert fragment in refusal(validation.check_uplink, message, message.WhichOneof("payload"))


@pytest.mark.parametrize("payload", [
    {"audio": pb.AudioFrame(pcm=b"\0" * 640, timestamp_ms=3_600_000)},
    {"playback_started": cpb.PlaybackStarted(utterance_id="call-1:12:0")},
    {"playback_finished": cpb.PlaybackFinished(utterance_id="call-1:12:0", played_ms=900)},
    {"transfer_result": cpb.TransferResult(target_uri="sip:agent@127.0.0.1", ok=True, sip_status=200)},
    {"call_end": pb.CallEnd(reason="caller_hangup")},
])
def test_ordinary_messages_pass(payload) -> None:
    message = pb.MediaUplink(session_id=SID, **payload)
    validation.check_uplink(message, message.WhichOneof("payload"))


@pytest.mark.parametrize("code", [
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNKNOWN])
def test_refusals_are_not_resumed(code) -> None:
    assert is_refusal(code)


@pytest.mark.parametrize("code", [
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL])
def test_breaks_are_resumed(code) -> None:
    assert not is_refusal(code)


def refused_count(code: str) -> float:
    return REGISTRY.get_sample_value("dialtone_speech_runtime_refusals_total", {"code": code}) or 0.0


def resumed_count() -> float:
    return REGISTRY.get_sample_value("dialtone_speech_runtime_reconnects_total", {"outcome": "resumed"}) or 0.0


async def refusing_runtime(code: grpc.StatusCode, on: str):
    """A real grpc.aio server whose Converse aborts with ``code`` when it reads an ``on`` event and,
    like the runtime, with NOT_FOUND on a later Resume (a refused session is not kept)."""
    from dialtone.v1 import conversation_runtime_pb2_grpc as rpb_grpc

    class Servicer(rpb_grpc.ConversationRuntimeServicer):
        def __init__(self) -> None:
            self.streams: list[list[str]] = []

        async def Converse(self, request_iterator, context):
            kinds: list[str] = []
            self.streams.append(kinds)
            async for event in request_iterator:
                kinds.append(event.WhichOneof("payload"))
                if kinds[-1] == on:
                    await context.abort(code, f"refused: {'y' * 5000}")
                if kinds[-1] == "resume" and len(self.streams) > 1:
                    await context.abort(grpc.StatusCode.NOT_FOUND, f"refused: {'y' * 5000}")
            if False:
                yield

    server = grpc.aio.server()
    servicer = Servicer()
    rpb_grpc.add_ConversationRuntimeServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, servicer, f"127.0.0.1:{port}"


@pytest.mark.parametrize("code, on, started", [
    (grpc.StatusCode.INVALID_ARGUMENT, "dtmf", True),        # an event it will not take
    (grpc.StatusCode.INVALID_ARGUMENT, "call_started", True),  # an unknown dialog
    (grpc.StatusCode.NOT_FOUND, "resume", False),            # a resume of a session it does not know
    (grpc.StatusCode.UNKNOWN, "dtmf", True),                 # an unhandled error on this call's event
])
async def test_a_refused_stream_ends_the_link_at_once_without_a_resume(code, on, started) -> None:
    server, servicer, address = await refusing_runtime(code, on)
    before = {name: refused_count(name) for name in (code.name, "NOT_FOUND")}
    resumed_before = resumed_count()

    async def on_action(action: rpb.DialogAction) -> None:
        pass

    try:
        async with grpc.aio.insecure_channel(address) as channel:
            link = RuntimeLink(channel, SID, rpb.CallStarted() if started else None, on_action, reconnect_s=60.0)
            link.send(dtmf=cpb.Dtmf(digit="1"))
            with pytest.raises(RuntimeRefused) as err:
                await asyncio.wait_for(link.run(), 30)
    finally:
        await server.stop(0)
    # A write that races the runtime's abort makes gRPC replace the status with INTERNAL; the link then
    # resumes once, writing nothing after the Resume until the runtime answers, and gets the real one.
    assert len(servicer.streams) in (1, 2) and servicer.streams[0][-1] == on
    resumed = len(servicer.streams) == 2
    expected = grpc.StatusCode.NOT_FOUND if resumed else code
    if resumed:
        assert servicer.streams[1] == ["resume"]
    assert err.value.code == expected
    assert str(err.value).startswith(f"{expected.name} 'refused: yyy") and len(str(err.value)) < 300
    assert refused_count(expected.name) == before[expected.name] + 1
    assert resumed_count() == resumed_before + resumed


async def test_a_break_is_still_resumed_and_gives_up_after_the_window(port) -> None:
    """UNAVAILABLE (nothing listening) is retried until runtime_reconnect_s, then RuntimeUnavailable."""
    async def on_action(action: rpb.DialogAction) -> None:
        pass

    refused_before = refused_count("UNAVAILABLE")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        link = RuntimeLink(channel, SID, rpb.CallStarted(), on_action, reconnect_s=0.5)
        with pytest.raises(RuntimeUnavailable):
            await asyncio.wait_for(link.run(), 30)
    assert refused_count("UNAVAILABLE") == refused_before

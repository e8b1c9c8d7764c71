"""The gateway against a real sipp: each scenario asserts what the speech side received."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dialtone.common.audio import FRAME_BYTES, rms_dbfs
from dialtone.media_gateway.media_types import Direction
from dialtone.media_gateway.service import MediaGatewayApp
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb
from prometheus_client import REGISTRY

from tests.media_gateway.media_spy import MediaSpy
from tests.media_gateway.support import (
    RecordingSpeech,
    gateway_config,
    pcmu_pcap_from_g711a,
    run_sipp,
    start_gateway,
    start_speech,
    wait_until,
)
from tests.media_gateway.torture import open_collector


class Harness:
    def __init__(self, app: MediaGatewayApp, speech: RecordingSpeech, tmp_path: Path) -> None:
        self.app, self.speech, self.tmp_path = app, speech, tmp_path

    async def sipp(self, scenario: str, **kwargs: Any) -> None:
        result = await run_sipp(scenario, self.app.sip_port, self.tmp_path, **kwargs)
        assert result.returncode == 0, f"sipp {scenario} failed:\n{result.errors}\n{result.stdout}\n{result.stderr}"

    def only_stream(self) -> Any:
        assert len(self.speech.streams) == 1, f"expected one speech stream, got {len(self.speech.streams)}"
        return self.speech.streams[0]


@pytest.fixture
async def harness(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    server, speech, address = await start_speech()
    overrides = getattr(request, "param", {})
    config = gateway_config(address, **overrides)
    config.routing.by_callee = {"bot": "order_status"}
    app = await start_gateway(config)
    MediaSpy.opened.clear()
    try:
        yield Harness(app, speech, tmp_path)
    finally:
        await app.close()
        await server.stop(0)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"dialtone_{name}", labels) or 0.0


async def _answered(h: Harness) -> None:
    """The call is up: ACK seen (media started) and the speech stream is open."""
    await wait_until(lambda: bool(MediaSpy.opened and MediaSpy.opened[0].started and h.speech.streams
                                  and h.speech.streams[0].uplink), 15, "ACK and speech stream")


async def _call_ended(h: Harness) -> None:
    await wait_until(lambda: bool(h.speech.streams) and bool(h.speech.streams[0].of("call_end")), 10, "CallEnd")


async def test_basic_call_pcma_delivers_caller_audio(harness: Harness) -> None:
    """PCMA from sipp's pcap arrives as 16 kHz 640-byte frames after a CallStart carrying the SIP facts."""
    answered = _metric("media_call_setups_total", direction="inbound", code="200")
    await harness.sipp("basic_pcma")
    await _call_ended(harness)
    stream = harness.only_stream()
    start = stream.uplink[0].call_start
    assert start.call.callee == "bot" and start.call.caller.startswith("sip:alice@127.0.0.1")
    assert start.call.dialog == "order_status" and start.call.direction == common_pb2.DIRECTION_INBOUND
    headers = {h.name: h.value for h in start.call.headers}
    assert headers["X-Customer-Id"] == "4242" and headers["X-Campaign"] == "spring"
    assert start.sample_rate == 16000 and not start.resume
    frames = stream.of("audio")
    assert len(frames) >= 300, f"only {len(frames)} frames for a 7 s pcap"
    assert all(len(f.pcm) == FRAME_BYTES for f in frames)
    assert max(rms_dbfs(f.pcm) for f in frames) > -30.0
    assert stream.of("call_end")[0].reason == "caller_hangup"
    media = MediaSpy.opened[0]
    assert media.started[0].codec == "PCMA" and media.started[0].ptime_ms == 30 and media.closed
    assert _metric("media_call_setups_total", direction="inbound", code="200") == answered + 1
    await wait_until(lambda: _metric("media_active_calls") == 0, 5, "active calls gauge back to 0")
    seqs = [m.seq for m in stream.uplink]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_basic_call_pcmu(harness: Harness) -> None:
    """A PCMU call negotiates PT 0 and its audio reaches the speech side."""
    pcmu_pcap_from_g711a(harness.tmp_path / "pcmu.pcap")
    await harness.sipp("basic_pcmu")
    await _call_ended(harness)
    stream = harness.only_stream()
    assert MediaSpy.opened[0].started[0].codec == "PCMU"
    frames = stream.of("audio")
    assert len(frames) >= 300
    assert max(rms_dbfs(f.pcm) for f in frames) > -30.0


@pytest.mark.parametrize("harness", [{"ring_ms": 5000}], indirect=True)
async def test_cancel_while_ringing_gets_487(harness: Harness) -> None:
    """CANCEL before the answer: sipp sees 200 + 487 (its scenario checks), media closes, no frames."""
    await harness.sipp("cancel")
    await wait_until(lambda: not harness.app.calls.calls, 5, "call removed")  # type: ignore[union-attr]
    assert MediaSpy.opened and MediaSpy.opened[0].closed
    assert not MediaSpy.opened[0].started
    for stream in harness.speech.streams:
        assert not stream.of("audio")
        assert [e.reason for e in stream.of("call_end")] == ["cancelled"]


async def test_hold_and_resume_answer_directions(harness: Harness) -> None:
    """sendonly -> recvonly, inactive -> inactive, sendrecv -> sendrecv; MediaSession.update told each time."""
    await harness.sipp("hold_resume")
    await _call_ended(harness)
    updates = MediaSpy.opened[0].updates
    assert [u.direction for u in updates] == [Direction.RECVONLY, Direction.INACTIVE, Direction.SENDRECV]


async def test_g729_only_offer_gets_488(harness: Harness) -> None:
    """No common codec: 488 (counted by response code), no media opened, no speech stream."""
    before = _metric("media_call_setups_total", direction="inbound", code="488")
    await harness.sipp("g729_only")
    assert _metric("media_call_setups_total", direction="inbound", code="488") == before + 1
    assert not MediaSpy.opened
    assert not harness.speech.streams
    assert not harness.app.calls.calls  # type: ignore[union-attr]


async def test_rfc4733_and_info_digits_arrive(harness: Harness) -> None:
    """sipp's RFC 4733 pcaps for 1, # and 9, then an INFO Signal=5, arrive as four Dtmf events in order
    (and are counted by mode)."""
    rfc4733, info = _metric("media_dtmf_total", mode="rfc4733"), _metric("media_dtmf_total", mode="sip_info")
    await harness.sipp("dtmf")
    await _call_ended(harness)
    digits = harness.only_stream().of("dtmf")
    assert [d.digit for d in digits] == ["1", "#", "9", "5"]
    assert [d.source for d in digits] == [common_pb2.DTMF_SOURCE_RFC4733] * 3 + [common_pb2.DTMF_SOURCE_SIP_INFO]
    assert digits[3].duration_ms == 160
    assert _metric("media_dtmf_total", mode="rfc4733") == rfc4733 + 3
    assert _metric("media_dtmf_total", mode="sip_info") == info + 1


async def test_broken_speech_stream_is_resumed_without_dropping_the_call(harness: Harness) -> None:
    """The speech replica aborts the stream mid-call: the gateway reopens it with CallStart(resume=true) for the
    same session, later digits arrive on the new stream, and the caller's call is unaffected."""
    harness.speech.break_after_messages = 8
    await harness.sipp("dtmf")
    await wait_until(lambda: len(harness.speech.streams) >= 2 and bool(harness.speech.streams[-1].of("call_end")),
                     10, "CallEnd on the resumed stream")
    first, *rest = harness.speech.streams
    assert {s.session_id for s in harness.speech.streams} == {first.session_id}
    assert not first.uplink[0].call_start.resume
    assert all(s.uplink[0].call_start.resume for s in rest)
    digits = [d.digit for s in harness.speech.streams for d in s.of("dtmf")]
    assert digits[-2:] == ["9", "5"]
    assert rest[-1].of("call_end")[0].reason == "caller_hangup"


async def test_hangup_from_dialog_sends_bye(harness: Harness) -> None:
    """A Hangup coming down the stream becomes a BYE (sipp waits for it) and a CallEnd(dialog_hangup)."""
    import asyncio

    sipp = asyncio.create_task(harness.sipp("hangup_by_gateway"))
    await wait_until(lambda: bool(harness.speech.streams) and bool(harness.speech.streams[0].uplink), 10, "CallStart")
    await _answered(harness)
    harness.speech.streams[0].send(hangup=common_pb2.Hangup(reason="dialog_hangup"))
    await sipp
    await _call_ended(harness)
    assert harness.only_stream().of("call_end")[0].reason == "dialog_hangup"


async def test_play_audio_goes_out_and_is_reported(harness: Harness) -> None:
    """PlayAudio coming down reaches MediaSession.play; PlaybackStarted/Finished come back up the stream."""
    import asyncio

    import numpy as np

    sipp = asyncio.create_task(harness.sipp("hangup_by_gateway"))
    await _answered(harness)
    stream = harness.speech.streams[0]
    tone = (np.sin(np.arange(6400) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()  # 400 ms
    stream.send(play_audio=spb.PlayAudio(utterance_id="u1", pcm=tone, sample_rate=16000, last=True))
    await wait_until(lambda: bool(stream.of("playback_finished")), 10, "PlaybackFinished")
    stream.send(hangup=common_pb2.Hangup(reason="dialog_hangup"))
    await sipp
    assert MediaSpy.opened[0].played == [("u1", len(tone), True)]
    assert [p.utterance_id for p in stream.of("playback_started")] == ["u1"]
    finished = stream.of("playback_finished")[0]
    assert finished.utterance_id == "u1" and not finished.interrupted and finished.played_ms > 0


async def test_options_gets_200(harness: Harness) -> None:
    """OPTIONS (trunk keep-alive) is answered 200 with an Allow header listing INVITE..REFER."""
    await harness.sipp("options")
    assert not harness.speech.streams


async def test_transfer_sends_refer_and_reports_notify_outcome(harness: Harness) -> None:
    """Transfer -> REFER with Refer-To; the NOTIFY's 200 comes back as TransferResult(ok) and the call ends."""
    import asyncio

    sipp = asyncio.create_task(harness.sipp("refer"))
    await _answered(harness)
    harness.speech.streams[0].send(transfer=common_pb2.Transfer(target_uri="sip:agent@127.0.0.1:5099"))
    await sipp
    await _call_ended(harness)
    stream = harness.only_stream()
    results = stream.of("transfer_result")
    assert len(results) == 1
    assert (results[0].ok, results[0].sip_status, results[0].target_uri) == (True, 200, "sip:agent@127.0.0.1:5099")
    assert stream.of("call_end")[0].reason == "transfer"


async def test_failed_transfer_keeps_the_call(harness: Harness) -> None:
    """NOTIFY with 486: TransferResult(ok=false, 486), no BYE from us; the caller hangs up later."""
    import asyncio

    sipp = asyncio.create_task(harness.sipp("refer_failed"))
    await _answered(harness)
    harness.speech.streams[0].send(transfer=common_pb2.Transfer(target_uri="sip:agent@127.0.0.1:5099"))
    await sipp
    await _call_ended(harness)
    stream = harness.only_stream()
    results = stream.of("transfer_result")
    assert [(r.ok, r.sip_status) for r in results] == [(False, 486)]
    assert stream.of("call_end")[0].reason == "caller_hangup"


async def test_call_over_tcp_with_bye_from_the_gateway(harness: Harness) -> None:
    """SIP over TCP: sipp (-t t1) calls, the dialog hangs up, our BYE goes back on the same connection."""
    import asyncio

    sipp = asyncio.create_task(harness.sipp("hangup_by_gateway", extra=["-t", "t1"]))
    await _answered(harness)
    harness.speech.streams[0].send(hangup=common_pb2.Hangup(reason="dialog_hangup"))
    await sipp
    await _call_ended(harness)
    assert harness.only_stream().of("call_end")[0].reason == "dialog_hangup"


async def test_options_over_tcp(harness: Harness) -> None:
    """OPTIONS over TCP is answered 200 on the connection."""
    await harness.sipp("options", extra=["-t", "t1"])


async def test_late_offer_invite_gets_our_offer_and_the_ack_answer_starts_media(harness: Harness) -> None:
    """INVITE without SDP: the 200 carries our offer (all codecs + telephone-event), the ACK's answer (PCMA) is
    what MediaSession.start gets."""
    await harness.sipp("late_offer")
    await _call_ended(harness)
    started = MediaSpy.opened[0].started
    assert [(m.codec, m.payload_type, m.telephone_event_pt) for m in started] == [("PCMA", 8, 101)]
    assert harness.only_stream().of("call_end")[0].reason == "caller_hangup"


async def test_session_timer_caller_refreshes(harness: Harness) -> None:
    """INVITE with Session-Expires 1800;refresher=uac: our 200 confirms it with Require: timer (sipp checks),
    the caller's refresh re-INVITE is answered, the call goes on to a normal BYE."""
    await harness.sipp("session_timer_uac")
    await _call_ended(harness)
    assert harness.only_stream().of("call_end")[0].reason == "caller_hangup"


async def test_session_interval_below_min_se_gets_422(harness: Harness) -> None:
    """Session-Expires 30 is below our Min-SE 90: 422 with Min-SE, no media, no stream."""
    await harness.sipp("session_timer_small")
    assert not MediaSpy.opened and not harness.speech.streams


@pytest.mark.parametrize("harness", [{"min_session_expires_s": 1}], indirect=True)
async def test_session_timer_we_refresh_when_asked(harness: Harness) -> None:
    """Session-Expires 2;refresher=uas: we are the refresher and send a re-INVITE within the interval
    (sipp waits for it and answers), then the call ends normally."""
    await harness.sipp("session_timer_uas")
    await _call_ended(harness)


async def test_call_without_a_reachable_speech_gateway_is_hung_up(tmp_path: Path) -> None:
    """Nothing listens at speech_gateway_address: after speech_connect_timeout_s the gateway sends BYE
    (sipp waits for it) instead of leaving the caller in silence."""
    from tests.helpers import free_port

    config = gateway_config(f"127.0.0.1:{free_port()}")
    config.speech_connect_timeout_s = 1.0
    app = await start_gateway(config)
    try:
        result = await run_sipp("hangup_by_gateway", app.sip_port, tmp_path)
        assert result.returncode == 0, result.errors + result.stdout
        await wait_until(lambda: not app.calls.calls, 5, "call removed")  # type: ignore[union-attr]
    finally:
        await app.close()


async def test_media_sent_between_our_200_and_the_ack_is_not_lost(harness: Harness) -> None:
    """RFC 3264 §6: the answerer takes media once its answer is sent. A caller keys a digit the moment the
    200 arrives and its ACK follows later: the digit reaches the speech side (it was dropped when media
    started on the ACK)."""
    collector, port = await open_collector()
    assert collector.transport is not None
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        rtp_port = rtp.getsockname()[1]
        call_id = f"early-{os.urandom(6).hex()}"
        body = (f"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
        headers = (f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\n"
                   f"To: <sip:bot@127.0.0.1>{{to_tag}}\r\nCall-ID: {call_id}\r\nCSeq: 1 {{method}}\r\n"
                   f"Contact: <sip:a@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n")
        invite = ("INVITE sip:bot@127.0.0.1 SIP/2.0\r\n" + headers.format(to_tag="", method="INVITE")
                  + f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        collector.transport.sendto(invite.encode(), ("127.0.0.1", harness.app.sip_port))
        await wait_until(lambda: 200 in collector.status_codes(), 10, "200 OK")
        ok = next(m for m in collector.received if m.startswith(b"SIP/2.0 200")).decode()
        gateway_rtp = int(ok.split("m=audio ", 1)[1].split(" ", 1)[0])
        to_tag = ok.split("\r\nTo:", 1)[1].split("\r\n", 1)[0].split(";tag=", 1)[1]
        for i, end in enumerate([False, False, True, True, True]):    # key 5, 160 ms, its three end packets
            event = struct.pack("!BBH", 5, (0x80 if end else 0) | 10, 1280 if end else 160 * (i + 1))
            rtp.sendto(struct.pack("!BBHII", 0x80, 101, i + 1, 8000, 0x1234) + event, ("127.0.0.1", gateway_rtp))
        await asyncio.sleep(0.3)        # the ACK comes well after the digit
        ack = ("ACK sip:bot@127.0.0.1 SIP/2.0\r\n" + headers.format(to_tag=f";tag={to_tag}", method="ACK")
               .replace(f"branch=z9hG4bK-{call_id}", f"branch=z9hG4bK-ack-{call_id}") + "Content-Length: 0\r\n\r\n")
        collector.transport.sendto(ack.encode(), ("127.0.0.1", harness.app.sip_port))
        stream = harness.only_stream()
        await wait_until(lambda: bool(stream.of("dtmf")), 5, "the digit keyed before the ACK")
        assert [(d.digit, d.source) for d in stream.of("dtmf")] == [("5", common_pb2.DTMF_SOURCE_RFC4733)]
    finally:
        rtp.close()
        collector.transport.close()



async def _responses_to_invite(harness: Harness) -> list[str]:
    messages = harness.tmp_path / "messages.log"
    await harness.sipp("short_call", extra=["-trace_msg", "-message_file", str(messages)])
    await _call_ended(harness)
    statuses = []
    for message in re.split(r"\n-{10,}", messages.read_text(errors="replace")):
        status = re.search(r"^SIP/2\.0 (\d{3})", message, re.M)
        if status and re.search(r"^CSeq:\s*\d+\s+INVITE", message, re.M | re.I):
            statuses.append(status.group(1))
    return statuses


async def test_an_immediate_answer_sends_no_180(harness: Harness) -> None:
    """With ``sip.ring_ms`` 0 the INVITE gets 100 then 200, as from Asterisk's Answer(): no 180."""
    assert await _responses_to_invite(harness) == ["100", "200"]


@pytest.mark.parametrize("harness", [{"ring_ms": 200}], indirect=True)
async def test_a_ring_time_sends_180_first(harness: Harness) -> None:
    assert await _responses_to_invite(harness) == ["100", "180", "200"]

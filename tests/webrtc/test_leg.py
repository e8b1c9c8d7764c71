"""WebRtcLeg against a real aiortc peer over the machine's own interfaces (DTLS-SRTP, Opus)."""

from __future__ import annotations

import pytest
from dialtone.common.audio import FRAME_BYTES, rms_dbfs
from dialtone.media_gateway.media_types import DtmfDigit, DtmfMode, PlaybackReport
from dialtone.media_gateway.webrtc.errors import BadOffer
from dialtone.media_gateway.webrtc.leg import WebRtcLeg

from tests.webrtc.peers import BrowserLikePeer, tone_pcm, wait_until


class Recorder:
    def __init__(self) -> None:
        self.frames: list[tuple[bytes, int]] = []
        self.dtmf: list[DtmfDigit] = []
        self.reports: list[PlaybackReport] = []
        self.states: list[str] = []

    def leg(self, session_id: str = "leg-test") -> WebRtcLeg:
        return WebRtcLeg(session_id, on_frame=lambda pcm, ts: self.frames.append((pcm, ts)),
                         on_dtmf=self.dtmf.append, on_playback=self.reports.append, on_state=self.states.append)


@pytest.fixture
async def call():
    recorder = Recorder()
    leg = recorder.leg()
    peer = BrowserLikePeer()
    answer = await leg.accept(await peer.offer())
    await peer.accept(answer)
    await wait_until(lambda: "connected" in recorder.states, what="ICE + DTLS connected")
    yield recorder, leg, peer
    await peer.close()
    await leg.close()


async def test_answer_uses_opus_and_dtls(call):
    """The answer negotiates Opus over DTLS-SRTP and the leg reports connected."""
    recorder, leg, peer = call
    assert leg.codec == "opus"
    assert "a=fingerprint:sha-256" in peer.pc.remoteDescription.sdp
    assert leg.connection_state == "connected"
    candidates = [line.split()[4] for line in peer.pc.remoteDescription.sdp.splitlines()
                  if line.startswith("a=candidate:")]
    assert candidates and set(candidates) == {"127.0.0.1"}  # webrtc.ice_host_addresses, set by conftest


async def test_caller_audio_arrives_as_16k_20ms_frames(call):
    """The peer's 48 kHz Opus tone reaches on_frame as non-silent 640-byte frames 20 ms apart."""
    recorder, leg, peer = call
    await wait_until(lambda: len(recorder.frames) >= 25, what="25 inbound frames")
    assert all(len(pcm) == FRAME_BYTES for pcm, _ in recorder.frames)
    stamps = [ts for _, ts in recorder.frames[:25]]
    assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [20] * 24
    assert max(rms_dbfs(pcm) for pcm, _ in recorder.frames[5:25]) > -20.0


async def test_played_audio_reaches_the_peer_with_reports(call):
    """play() is heard by the peer; the utterance reports started, then finished with its full length."""
    recorder, leg, peer = call
    leg.play("u1", tone_pcm(440, 300), 16000, last=False)
    leg.play("u1", b"", 16000, last=True)
    await wait_until(lambda: any(r.finished for r in recorder.reports), what="playback finished")
    started, finished = recorder.reports[:2]
    assert (started.utterance_id, started.finished) == ("u1", False)
    assert (finished.finished, finished.interrupted, finished.played_ms, finished.total_ms) == (True, False, 300, 300)
    await wait_until(lambda: any(level > -25.0 for level in peer.levels), what="the peer hearing the tone")


async def test_play_resamples_other_rates(call):
    """Audio at 22050 Hz (piper's rate) is resampled to 16 kHz: 500 ms stays about 500 ms."""
    recorder, leg, peer = call
    leg.play("u2", tone_pcm(300, 500, rate=22050), 22050, last=True)
    await wait_until(lambda: any(r.finished for r in recorder.reports), what="playback finished")
    assert 480 <= recorder.reports[-1].total_ms <= 520


async def test_stop_playback_interrupts_within_a_frame(call):
    """stop_playback() reports the utterance interrupted with what was played so far; later chunks are dropped."""
    recorder, leg, peer = call
    leg.play("long", tone_pcm(440, 5000), 16000, last=False)
    await wait_until(lambda: bool(recorder.reports), what="playback started")
    sent_before = leg._track.audio_frames_sent
    leg.stop_playback()
    finished = recorder.reports[-1]
    assert finished.finished and finished.interrupted
    assert finished.total_ms == 5000 and 0 < finished.played_ms < 5000
    leg.play("long", tone_pcm(440, 1000), 16000, last=True)
    await wait_until(lambda: leg._track.frames_sent > sent_before + 10, what="10 more frames")
    assert leg._track.audio_frames_sent <= sent_before + 1


async def test_keypad_message_becomes_webrtc_dtmf(call):
    """A key press on the dtmf data channel reaches on_dtmf as DtmfMode.WEBRTC; junk is ignored."""
    recorder, leg, peer = call
    await wait_until(lambda: peer.channel.readyState == "open", what="data channel open")
    peer.channel.send("not json")
    peer.channel.send('{"digit": "5", "duration_ms": 120}')
    await wait_until(lambda: bool(recorder.dtmf), what="a DTMF digit")
    digit = recorder.dtmf[0]
    assert (digit.digit, digit.duration_ms, digit.mode) == ("5", 120, DtmfMode.WEBRTC)
    assert len(recorder.dtmf) == 1


async def test_peer_closing_ends_the_leg(call):
    """When the browser closes its side, wait_ended() returns (the owner then closes the leg)."""
    recorder, leg, peer = call
    await peer.close()
    await wait_until(lambda: leg._ended.is_set(), timeout=15.0, what="the leg to see the peer gone")


@pytest.mark.parametrize("sdp, message", [
    ("garbage", "must start with 'v=0'"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no audio m-line"),
])
async def test_bad_offer_opens_nothing(sdp, message):
    """A refused offer raises BadOffer with the reason and creates no peer connection."""
    leg = Recorder().leg()
    with pytest.raises(BadOffer, match=message):
        await leg.accept(sdp)
    assert leg._pc is None


async def test_failing_owner_callback_does_not_stop_media():
    """An exception in on_frame is logged; frames keep flowing and playback still works."""
    seen = []

    def on_frame(pcm: bytes, ts: int) -> None:
        seen.append(ts)
        raise RuntimeError("owner bug")

    recorder = Recorder()
    leg = WebRtcLeg("leg-test", on_frame=on_frame, on_dtmf=recorder.dtmf.append,
                    on_playback=recorder.reports.append, on_state=recorder.states.append)
    peer = BrowserLikePeer()
    try:
        await peer.accept(await leg.accept(await peer.offer()))
        await wait_until(lambda: len(seen) >= 20, what="20 frames despite the failing callback")
        leg.play("u", tone_pcm(440, 100), 16000, last=True)
        await wait_until(lambda: any(r.finished for r in recorder.reports), what="playback finished")
        stats = leg.stats()
        assert stats["callback_errors"] == stats["frames_delivered"] >= 20
        assert stats["audio_frames_out"] == 5
    finally:
        await peer.close()
        await leg.close()

"""The send core: RTP time per tick (gaps, not bursts, after a stall), markers, silence, encoding."""

from __future__ import annotations

import numpy as np
import pytest
from aiortp.codecs import PcmaCodec, PcmuCodec
from dialtone.common.audio import FRAME_BYTES
from dialtone.media_gateway.media.send import SendStream

from tests.media_gateway.media.helpers import level_dbfs, media, sine


def test_timestamps_step_by_one_frame_and_jump_over_missed_ticks() -> None:
    stream = SendStream(media("PCMU", 0), rtp_timestamp=2**32 - 160)
    assert [stream.advance(1), stream.advance(1), stream.advance(3), stream.advance(1)] == [
        2**32 - 160, 0, 160, 640]


def test_opus_clock_steps_960() -> None:
    stream = SendStream(media("opus", 111), rtp_timestamp=0)
    stream.advance(1)
    assert stream.advance(1) == 960


def test_marker_on_first_packet_and_after_talkspurt() -> None:
    stream = SendStream(media("PCMA", 8))
    assert [stream.take_marker(), stream.take_marker()] == [1, 0]
    stream.talkspurt()
    assert [stream.take_marker(), stream.take_marker()] == [1, 0]


@pytest.mark.parametrize(("codec", "pt", "decoder"), [("PCMU", 0, PcmuCodec()), ("PCMA", 8, PcmaCodec())])
def test_silence_is_the_codecs_silence_and_frames_encode_the_tone(codec: str, pt: int, decoder) -> None:  # type: ignore[no-untyped-def]
    stream = SendStream(media(codec, pt))
    silence = stream.encode(None)
    assert len(silence) == 160 and level_dbfs(decoder.decode(silence)) < -60
    tone = sine(440, 400, 16000, dbfs=-12)
    payloads = [stream.encode(tone[i:i + FRAME_BYTES]) for i in range(0, len(tone), FRAME_BYTES)]
    assert all(len(p) == 160 for p in payloads)
    assert abs(level_dbfs(decoder.decode(b"".join(payloads[3:]))) + 12) < 1.0


def test_opus_payloads_decode_back_to_the_tone() -> None:
    from dialtone.media_gateway.media.codecs import make_codec

    stream = SendStream(media("opus", 111))
    decoder = make_codec("opus")
    tone = sine(440, 600, 16000, dbfs=-12)
    decoded = [decoder.decode(stream.encode(tone[i:i + FRAME_BYTES])) for i in range(0, len(tone), FRAME_BYTES)]
    assert all(len(d) == 960 * 2 for d in decoded)
    assert abs(level_dbfs(b"".join(decoded[5:])) + 12) < 1.5
    quiet = [decoder.decode(stream.encode(None)) for _ in range(5)][-1]   # after the codec's own decay
    assert np.frombuffer(quiet, dtype="<i2").std() < 100


def test_unsupported_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported codec"):
        SendStream(media("G722", 9))


def test_a_30_minute_call_with_stalls_neither_drifts_nor_bursts() -> None:
    """Clock + queue + send core over 30 min of jittery wake-ups and a few 100-300 ms stalls:
    RTP time ends exactly at the wall-clock tick count, one packet per wake-up at most, and the
    utterance is played whole (stalls delay it, never drop or squeeze it)."""
    import random

    from dialtone.media_gateway.media.pacing import PacingClock
    from dialtone.media_gateway.media.playback import PlaybackQueue

    rng = random.Random(3)
    clock = PacingClock(start=0.0, interval=0.020)
    queue = PlaybackQueue()
    queue.enqueue("long", bytes(FRAME_BYTES) * 3000, last=True)     # 60 s of audio
    send = SendStream(media("PCMU", 0), rtp_timestamp=0)
    now, last_take, packets, reports = 0.0, 0.0, 0, []
    while now < 1800.0:
        due = clock.take(now)
        if due.ticks:
            last_take = now
            send.advance(due.ticks)
            frame, done = queue.next_frame(int(now * 1000))
            send.encode(frame)
            packets += 1
            reports += done
        stall = rng.uniform(0.1, 0.3) if rng.random() < 0.0005 else 0.0
        now = clock.next_deadline() + rng.uniform(0.0, 0.006) + stall
    assert send.rtp_timestamp == clock.ticks_taken * 160
    assert clock.ticks_taken == int(last_take / 0.020) + 1 > 89_000
    assert packets < clock.ticks_taken     # the stalls were skipped, not sent as bursts
    assert [(r.finished, r.played_ms, r.total_ms) for r in reports] == [(False, 20, 60000), (True, 60000, 60000)]

"""The receive path around aiortp's adaptive playout: reorder, loss, duplicates, late packets, DTMF.

A fake clock drives it: packets "arrive" at given times, playout ticks every ptime.
"""

from __future__ import annotations

import struct

import numpy as np
from aiortp.codecs import PcmuCodec
from aiortp.packet import RtpPacket
from dialtone.media_gateway.media.receive import ReceiveStream
from dialtone.media_gateway.media_types import DtmfMode

from tests.media_gateway.media.helpers import dtmf_tone, level_dbfs, media, read_pcap_rtp, sine

PCMU = PcmuCodec()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tone_packets(seconds: float, ptime_ms: int = 20, ssrc: int = 0x1234, first_seq: int = 100,
                 first_ts: int = 5000, pcm: bytes | None = None) -> list[RtpPacket]:
    samples = 8 * ptime_ms
    audio = pcm if pcm is not None else sine(400, int(seconds * 1000), 8000, dbfs=-12)
    packets = []
    for i in range(len(audio) // (samples * 2)):
        payload = PCMU.encode(audio[i * samples * 2:(i + 1) * samples * 2])
        packets.append(RtpPacket(payload_type=0, sequence_number=(first_seq + i) & 0xFFFF,
                                 timestamp=(first_ts + i * samples) & 0xFFFFFFFF, ssrc=ssrc, payload=payload))
    return packets


def run(stream: ReceiveStream, clock: FakeClock, arrivals: list[tuple[float, RtpPacket]], ticks: int,
        tick_s: float = 0.020):
    """Deliver packets at their arrival times and tick the playout; returns (frames, digits)."""
    arrivals = sorted(arrivals, key=lambda a: a[0])
    frames, digits = [], []
    i = 0
    for k in range(ticks):
        tick_at = k * tick_s + 0.005
        while i < len(arrivals) and arrivals[i][0] <= tick_at:
            clock.now = arrivals[i][0]
            digits += stream.on_packet(arrivals[i][1], int(clock.now * 1000))
            i += 1
        clock.now = tick_at
        out, found = stream.tick(int(tick_at * 1000))
        frames += out
        digits += found
    return frames, digits


def same_audio(a: bytes, b: bytes) -> bool:
    """Equal up to soxr's last-bit rounding (its SIMD path depends on buffer alignment)."""
    x, y = np.frombuffer(a, dtype="<i2").astype(int), np.frombuffer(b, dtype="<i2").astype(int)
    return len(x) == len(y) and int(np.abs(x - y).max(initial=0)) <= 4


def steady(packets: list[RtpPacket], delay: float = 0.0) -> list[tuple[float, RtpPacket]]:
    return [(i * 0.020 + delay, p) for i, p in enumerate(packets)]


def fresh(**kw) -> tuple[ReceiveStream, FakeClock]:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    return ReceiveStream(media(**kw), now=clock), clock


def test_in_order_stream_gives_one_frame_per_tick_with_the_tone() -> None:
    stream, clock = fresh()
    frames, _ = run(stream, clock, steady(tone_packets(1.0)), 51)
    assert len(frames) == 51 and all(len(f) == 640 for f in frames)
    assert abs(level_dbfs(b"".join(frames[10:45])) + 12) < 1.5
    stats = stream.stats()
    assert (stats["packets_in"], stats["packets_lost"], stats["concealed_frames"], stats["late_packets"]) == \
        (50, 0, 0, 0)


def test_reordered_packets_are_put_back_in_order() -> None:
    """Each even packet 25 ms late (arrives after its odd successor): nothing is late, lost or concealed
    mid-stream, and the tone plays without a gap."""
    packets = tone_packets(1.0)
    stream, clock = fresh()
    arrivals = [(i * 0.020 + (0.025 if i % 2 == 0 else 0.0) + 0.002, p) for i, p in enumerate(packets)]
    frames, _ = run(stream, clock, arrivals, 50)
    stats = stream.stats()
    assert (stats["late_packets"], stats["packets_lost"], stats["concealed_frames"]) == (0, 0, 0)
    assert all(level_dbfs(f) > -14 for f in frames[4:-2])


def test_reordered_within_a_frame_gives_the_same_audio_as_in_order() -> None:
    """Pairs swapped 2 ms apart: the same audio comes out as from the in-order stream."""
    packets = tone_packets(1.0)
    reference, clock = fresh()
    expected, _ = run(reference, clock, [(i * 0.020 + 0.003, p) for i, p in enumerate(packets)], 51)
    stream, clock = fresh()
    arrivals = [(i * 0.020 + (0.004 if i % 2 == 0 else 0.002), p) for i, p in enumerate(packets)]
    frames, _ = run(stream, clock, arrivals, 51)
    assert stream.stats()["concealed_frames"] == 0
    assert same_audio(b"".join(frames), b"".join(expected))


def test_lost_packets_are_concealed_and_counted_stream_stays_steady() -> None:
    packets = tone_packets(1.0)
    kept = [p for i, p in enumerate(packets) if i % 10 != 5]
    stream, clock = fresh()
    frames, _ = run(stream, clock, [(0.020 * (p.sequence_number - 100), p) for p in kept], 51)
    stats = stream.stats()
    assert len(frames) == 51
    assert stats["packets_lost"] == 5 and stats["concealed_frames"] >= 5
    # concealment repeats the tone rather than dropping to silence
    assert level_dbfs(b"".join(frames[10:45])) > -15


def test_duplicates_are_dropped_and_counted() -> None:
    packets = tone_packets(1.0)
    reference, clock = fresh()
    expected, _ = run(reference, clock, steady(packets), 51)
    stream, clock = fresh()
    doubled = steady(packets) + [(t + 0.004, p) for t, p in steady(packets)]
    frames, _ = run(stream, clock, doubled, 51)
    stats = stream.stats()
    assert stats["duplicates"] == 50 and stats["packets_in"] == 50 and stats["late_packets"] == 0
    assert stats["concealed_frames"] == 0
    assert same_audio(b"".join(frames), b"".join(expected))


def test_packet_later_than_the_playout_is_dropped_as_late_and_concealed() -> None:
    packets = tone_packets(1.0)
    stream, clock = fresh()
    arrivals = steady(packets)
    arrivals[20] = (arrivals[20][0] + 0.300, arrivals[20][1])
    frames, _ = run(stream, clock, arrivals, 51)
    stats = stream.stats()
    assert stats["late_packets"] == 1 and stats["concealed_frames"] == 1
    assert len(frames) == 51


def test_new_ssrc_mid_call_restarts_the_stream() -> None:
    first = tone_packets(0.5)
    second = tone_packets(0.5, ssrc=0x9999, first_seq=40000, first_ts=900000)
    stream, clock = fresh()
    arrivals = steady(first) + [(0.5 + t, p) for t, p in steady(second)]
    frames, _ = run(stream, clock, arrivals, 60)
    assert stream.ssrc_changes == 1
    assert level_dbfs(b"".join(frames[35:48])) > -15


def test_peer_sending_30ms_g711_despite_20ms_negotiated() -> None:
    """sipp's g711a.pcap style: 240-sample packets; the stream follows them and still yields 20 ms frames."""
    stream, clock = fresh(ptime=20)
    packets = tone_packets(0.9, ptime_ms=30)
    frames, _ = run(stream, clock, [(i * 0.030, p) for i, p in enumerate(packets)], 40, tick_s=0.030)
    assert stream.ptime_s == 0.030 and stream.stats()["ptime_changes"] == 1
    assert all(len(f) == 640 for f in frames)
    assert len(frames) == 60   # 40 ticks of 30 ms
    assert level_dbfs(b"".join(frames[10:40])) > -15


def test_short_telephone_event_payload_is_counted_not_raised() -> None:
    stream, _ = fresh()
    bad = RtpPacket(payload_type=101, sequence_number=1, timestamp=1, ssrc=5, payload=b"\x01\x80")
    assert stream.on_packet(bad, 0) == []
    assert stream.stats()["bad_dtmf_events"] == 1


def test_rfc4733_from_sipp_pcap_through_the_stream() -> None:
    """sipp's dtmf_2833_pound.pcap (progress packets, 3 end packets with one sequence number) is one '#'."""
    stream, clock = fresh()
    arrivals = [(p.at, RtpPacket.parse(p.rtp)) for p in read_pcap_rtp("dtmf_2833_pound.pcap")]
    _, digits = run(stream, clock, arrivals, 30)
    assert [(d.digit, d.mode) for d in digits] == [("#", DtmfMode.RFC4733)]
    assert digits[0].duration_ms == struct.unpack("!H", arrivals[-1][1].payload[2:4])[0] // 8


def test_inband_dtmf_on_g711_without_telephone_event() -> None:
    pcm = bytes(1600) + dtmf_tone("7", 120) + bytes(3200)
    stream, clock = fresh(te=None)
    _, digits = run(stream, clock, steady(tone_packets(0.5, pcm=pcm)), 40)
    assert [(d.digit, d.mode) for d in digits] == [("7", DtmfMode.INBAND)]


def test_inband_detection_is_off_when_telephone_event_was_negotiated() -> None:
    pcm = bytes(1600) + dtmf_tone("7", 120) + bytes(3200)
    stream, clock = fresh(te=101)
    _, digits = run(stream, clock, steady(tone_packets(0.5, pcm=pcm)), 40)
    assert digits == []


def test_opus_peer_sending_40ms_packets_is_followed() -> None:
    """Opus packets are self-describing: 40 ms packets (TOC) re-frame the playout, audio stays continuous."""
    from dialtone.media_gateway.media.codecs import make_codec, opus_packet_ms

    encoder = make_codec("opus", 40)
    audio = sine(400, 1000, 48000, dbfs=-12)
    samples = 1920
    packets = [RtpPacket(payload_type=111, sequence_number=i, timestamp=i * samples, ssrc=1,
                         payload=encoder.encode(audio[i * samples * 2:(i + 1) * samples * 2]))
               for i in range(len(audio) // (samples * 2))]
    assert opus_packet_ms(packets[0].payload) == 40.0
    stream, clock = fresh(codec="opus", pt=111)
    frames, _ = run(stream, clock, [(i * 0.040, p) for i, p in enumerate(packets)], 25, tick_s=0.040)
    assert stream.ptime_s == 0.040 and stream.stats()["ptime_changes"] == 1
    assert len(frames) == 50
    assert all(level_dbfs(f) > -16 for f in frames[6:-3])


def test_opus_toc_durations() -> None:
    from dialtone.media_gateway.media.codecs import opus_packet_ms

    assert opus_packet_ms(bytes([(1 << 3) | 0])) == 20.0        # SILK NB 20 ms, one frame
    assert opus_packet_ms(bytes([(31 << 3) | 1])) == 40.0       # CELT FB 20 ms, two frames
    assert opus_packet_ms(bytes([(16 << 3) | 3, 4])) == 10.0    # CELT 2.5 ms x 4
    assert opus_packet_ms(bytes([3])) is None and opus_packet_ms(b"") is None


def test_unusable_negotiated_ptime_starts_at_20ms() -> None:
    stream, _ = fresh(codec="opus", pt=111, ptime=30)
    assert stream.ptime_s == 0.020


def test_events_on_their_own_ssrc_do_not_restart_the_audio() -> None:
    """A gateway sending RFC 4733 on a separate SSRC: the digit is found and the tone plays on."""
    packets = tone_packets(1.0)
    events = [RtpPacket(payload_type=101, sequence_number=7000 + i, timestamp=123456, ssrc=0xEEEE,
                        payload=struct.pack("!BBH", 4, (0x80 if i >= 3 else 0) | 10, 160 * (i + 1)))
              for i in range(6)]
    stream, clock = fresh()
    arrivals = steady(packets) + [(0.4 + i * 0.02 + 0.001, e) for i, e in enumerate(events)]
    frames, digits = run(stream, clock, arrivals, 51)
    assert [d.digit for d in digits] == ["4"]
    assert stream.ssrc_changes == 0 and stream.stats()["concealed_frames"] == 0
    assert all(level_dbfs(f) > -14 for f in frames[8:50])


def test_invalid_opus_and_empty_payloads_never_reach_the_decoder() -> None:
    """Opus 'code 3 with 0 frames' (libopus rejects it) and empty payloads are counted and dropped."""
    stream, clock = fresh(codec="opus", pt=111)
    bad = [(i * 0.02, RtpPacket(payload_type=111, sequence_number=i, timestamp=i * 960, ssrc=1,
                                payload=bytes([0x03, 0x00]) if i % 2 else b"")) for i in range(10)]
    frames, _ = run(stream, clock, bad, 12)
    assert stream.stats()["bad_payloads"] == 10 and len(frames) == 12


def test_a_library_logger_flood_is_cut_to_one_line(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from dialtone.media_gateway.media.udp import quiet_library_loggers

    quiet_library_loggers(("test.flooding.library",))
    flooding = logging.getLogger("test.flooding.library")
    with caplog.at_level(logging.WARNING, logger="test.flooding.library"):
        for ts in range(100):
            flooding.warning("decode failed at ts=%d", ts)
    assert len([r for r in caplog.records if r.name == "test.flooding.library"]) == 1

"""MediaSession on loopback against peers we drive: a second MediaSession or a raw UDP socket."""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
import pytest
from aiortp.codecs import PcmaCodec, PcmuCodec
from dialtone.common.audio import FRAME_BYTES
from dialtone.media_gateway.media_types import Direction, DtmfMode
from prometheus_client import REGISTRY

from tests.media_gateway.media.helpers import (
    dtmf_tone,
    level_dbfs,
    media,
    read_pcap_rtp,
    rtp,
    sine,
    wait_until,
)

PCMU_SILENCE = PcmuCodec().encode(bytes(320))
CODECS = [("PCMU", 0), ("PCMA", 8), ("opus", 111)]


@pytest.mark.parametrize(("codec", "pt"), CODECS)
async def test_two_sessions_carry_a_tone_both_ways(open_session, codec: str, pt: int) -> None:
    """A tone played on each side arrives on the other as 16 kHz 20 ms frames at the same level."""
    a, rec_a = await open_session(name="a")
    b, rec_b = await open_session(name="b")
    a.start(media(codec, pt, b.local_port))
    b.start(media(codec, pt, a.local_port))
    a.play("hello", sine(440, 1000, 16000, dbfs=-12), 16000, last=True)
    b.play("hi", sine(700, 1000, 16000, dbfs=-12), 16000, last=True)
    await wait_until(lambda: len(rec_a.reports) == 2 and len(rec_b.reports) == 2)
    await wait_until(lambda: len(rec_b.frames) >= 60 and len(rec_a.frames) >= 60)
    for rec in (rec_a, rec_b):
        assert all(len(frame) == FRAME_BYTES for frame, _ in rec.frames)
        assert [ts for _, ts in rec.frames[:5]] == [0, 20, 40, 60, 80]
        loud = [level_dbfs(frame) for frame, _ in rec.frames if level_dbfs(frame) > -20]
        assert len(loud) >= 40
        assert abs(float(np.median(loud)) + 12) < 2
    assert [(r.utterance_id, r.finished, r.played_ms, r.total_ms, r.interrupted) for r in rec_a.reports] == [
        ("hello", False, 20, 1000, False), ("hello", True, 1000, 1000, False)]


async def test_pacing_sequence_and_timestamp_continuity(open_session, peer) -> None:
    """Packets to a raw peer: consecutive sequence numbers, timestamps in 160 steps, one SSRC, marker on the
    first only, and never ahead of real time (no burst)."""
    session, _ = await open_session()
    session.start(media("PCMU", 0, peer.port))
    session.play("u", sine(300, 3000, 16000), 16000, last=True)
    await wait_until(lambda: len(peer.received) >= 60)
    got = peer.received[:60]
    packets = [p for _, p in got]
    assert {p.payload_type for p in packets} == {0} and len({p.ssrc for p in packets}) == 1
    assert [p.marker for p in packets] == [1] + [0] * 59
    assert all((b.sequence_number - a.sequence_number) % 65536 == 1 for a, b in itertools.pairwise(packets))
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in itertools.pairwise(packets)]
    assert all(step % 160 == 0 and step >= 160 for step in steps)
    assert all(len(p.payload) == 160 for p in packets)
    t0, ts0 = got[0][0], packets[0].timestamp
    for arrival, packet in got:
        media_time = ((packet.timestamp - ts0) % 2**32) / 8000
        assert arrival - t0 >= media_time - 0.1, "a packet arrived ahead of its media time: burst"


async def test_symmetric_rtp_latches_to_the_real_source(open_session, peer) -> None:
    """SDP says port X (nobody there); RTP comes from the peer's port: we answer there, others are ignored."""
    from tests.media_gateway.media.helpers import RawPeer

    decoy = await RawPeer.open()
    intruder = await RawPeer.open()
    try:
        session, rec = await open_session()
        session.start(media("PCMU", 0, decoy.port))
        await wait_until(lambda: len(decoy.received) >= 2)
        tone = PcmuCodec().encode(sine(500, 20, 8000))
        for i in range(10):
            peer.send(rtp(1000 + i, 160 * i, tone), session.local_port)
            await asyncio.sleep(0.005)
        await wait_until(lambda: len(peer.received) >= 5)
        for i in range(5):
            intruder.send(rtp(7000 + i, 99 * i, tone, ssrc=0x6666), session.local_port)
        await wait_until(lambda: session.stats()["dropped_foreign_source"] == 5)
        before = len(decoy.received)
        await wait_until(lambda: len(peer.received) >= 15)
        assert len(decoy.received) <= before + 1
        assert intruder.received == []
    finally:
        decoy.close()
        intruder.close()


async def test_without_symmetric_latching_only_the_answered_address_is_heard(open_session, peer) -> None:
    """A dialling client (the caller tool): a stale stream from another port, still aimed at our
    reused port, is dropped even when it arrives first; the answered address is heard."""
    from tests.media_gateway.media.helpers import RawPeer

    stale = await RawPeer.open()
    try:
        session, _ = await open_session()
        session.symmetric_latching = False
        session.start(media("PCMU", 0, peer.port))
        tone = PcmuCodec().encode(sine(500, 20, 8000))
        for i in range(5):
            stale.send(rtp(5000 + i, 160 * i, tone, ssrc=0x5555), session.local_port)
        await wait_until(lambda: session.stats()["dropped_foreign_source"] == 5)
        for i in range(5):
            peer.send(rtp(1000 + i, 160 * i, tone), session.local_port)
            await asyncio.sleep(0.005)
        await wait_until(lambda: session.stats()["packets_in"] == 5)
        assert session.stats()["dropped_foreign_source"] == 5
        assert stale.received == []      # nothing of ours went to the stale stream's source
    finally:
        stale.close()


async def test_stop_playback_flushes_within_one_frame(open_session, peer) -> None:
    """Barge-in: after stop_playback every packet sent is silence, and the report says how much played."""
    session, rec = await open_session()
    session.start(media("PCMU", 0, peer.port))
    session.play("long", sine(400, 5000, 16000, dbfs=-10), 16000, last=True)
    await wait_until(lambda: sum(p.payload != PCMU_SILENCE for _, p in peer.received) >= 10)
    sent_before_stop = int(session.stats()["packets_out"])
    session.stop_playback()
    assert session.stats()["playback_queued_ms"] == 0
    await wait_until(lambda: len(peer.received) >= sent_before_stop + 10)
    after = [p for _, p in peer.received[sent_before_stop:]]
    assert all(p.payload == PCMU_SILENCE for p in after)
    audio_sent = sum(p.payload != PCMU_SILENCE for _, p in peer.received[:sent_before_stop])
    final = rec.reports[-1]
    assert (final.utterance_id, final.finished, final.interrupted, final.total_ms) == ("long", True, True, 5000)
    assert final.played_ms == audio_sent * 20 < 5000
    # audio still streaming in for the stopped utterance is dropped, not played
    session.play("long", sine(400, 500, 16000), 16000, last=True)
    assert session.stats()["playback_queued_ms"] == 0


async def test_hold_playback_silences_the_prompt_and_resume_plays_the_rest(open_session, peer) -> None:
    """Barge-in under judgement: silence on the wire from the next packet, the prompt kept in place;
    a resume (backchannel) plays on from where it stopped, nothing skipped."""
    session, rec = await open_session()
    session.start(media("PCMU", 0, peer.port))
    session.play("long", sine(400, 3000, 16000, dbfs=-10), 16000, last=True)
    await wait_until(lambda: sum(p.payload != PCMU_SILENCE for _, p in peer.received) >= 10)
    sent_before_hold = int(session.stats()["packets_out"])
    session.hold_playback()
    await wait_until(lambda: len(peer.received) >= sent_before_hold + 10)
    held = [p for _, p in peer.received[sent_before_hold:sent_before_hold + 10]]
    assert all(p.payload == PCMU_SILENCE for p in held)
    assert session.stats()["playback_queued_ms"] > 2000    # kept, not dropped
    session.resume_playback()
    await wait_until(lambda: rec.reports and rec.reports[-1].finished, timeout=6)
    final = rec.reports[-1]
    assert (final.utterance_id, final.interrupted, final.played_ms) == ("long", False, 3000)
    audio_packets = sum(p.payload != PCMU_SILENCE for _, p in peer.received)
    assert abs(audio_packets - 150) <= 2     # every frame of the 3 s prompt went out once


async def test_hold_stops_sending_and_resume_continues_the_stream(open_session, peer) -> None:
    session, _ = await open_session()
    session.start(media("PCMU", 0, peer.port))
    await wait_until(lambda: len(peer.received) >= 5)
    session.update(media("PCMU", 0, peer.port, direction=Direction.RECVONLY))
    held_at = session.stats()["packets_out"]
    hold_started = time.monotonic()
    await asyncio.sleep(0.3)
    assert session.stats()["packets_out"] == held_at
    received_during_hold = len(peer.received)
    assert received_during_hold == held_at
    session.update(media("PCMU", 0, peer.port, direction=Direction.SENDRECV))
    await wait_until(lambda: len(peer.received) >= received_during_hold + 3)
    held_seconds = time.monotonic() - hold_started
    last_before, first_after = peer.received[received_during_hold - 1][1], peer.received[received_during_hold][1]
    assert first_after.marker == 1
    assert (first_after.sequence_number - last_before.sequence_number) % 65536 == 1
    gap = ((first_after.timestamp - last_before.timestamp) % 2**32) / 8000
    assert gap >= 0.25 and gap <= held_seconds + 0.1


async def test_codec_change_on_reinvite(open_session, peer) -> None:
    session, _ = await open_session()
    session.start(media("PCMU", 0, peer.port))
    await wait_until(lambda: len(peer.received) >= 3)
    with pytest.raises(ValueError, match="unsupported codec 'G729'"):
        session.update(media("G729", 18, peer.port))
    session.update(media("PCMA", 8, peer.port))
    switched = len(peer.received)
    await wait_until(lambda: len(peer.received) >= switched + 5)
    assert {p.payload_type for _, p in peer.received[switched + 1:]} == {8}
    seqs = [p.sequence_number for _, p in peer.received]
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))


async def test_rfc4733_digits_from_sipp_pcaps(open_session, peer) -> None:
    """sipp's RFC 2833 pcaps for every key, replayed as one stream: each key once, in order."""
    session, rec = await open_session()
    session.start(media("PCMU", 0, peer.port, te=101))
    names = [f"dtmf_2833_{d}.pcap" for d in range(10)] + ["dtmf_2833_star.pcap", "dtmf_2833_pound.pcap"]
    seq, ts = 20000, 100000
    for name in names:
        for packet in read_pcap_rtp(name):
            data = bytearray(packet.rtp)
            original_seq = int.from_bytes(data[2:4], "big")
            data[2:4] = ((seq + original_seq) % 65536).to_bytes(2, "big")
            data[4:8] = ts.to_bytes(4, "big")
            peer.send(bytes(data), session.local_port)
            await asyncio.sleep(0.002)
        seq += 50
        ts += 8000
    await wait_until(lambda: len(rec.digits) >= 12)
    await asyncio.sleep(0.1)
    assert "".join(d.digit for d in rec.digits) == "0123456789*#"
    assert {d.mode for d in rec.digits} == {DtmfMode.RFC4733}
    assert session.stats()["duplicates"] == 24   # sipp's 3 end packets share one sequence number


async def test_sipp_g711a_pcap_audio_at_30ms_ptime(open_session, peer) -> None:
    """The first 1.5 s of sipp's g711a.pcap (PCMA, 30 ms packets) become steady 20 ms frames of speech."""
    session, rec = await open_session()
    session.start(media("PCMA", 8, peer.port, te=None))
    packets = [p for p in read_pcap_rtp("g711a.pcap") if p.at < 1.5]
    start = time.monotonic()
    for packet in packets:
        await asyncio.sleep(max(0.0, start + packet.at - time.monotonic()))
        peer.send(packet.rtp, session.local_port)
    await asyncio.sleep(0.2)
    stats = session.stats()
    assert stats["packets_in"] == len(packets) and stats["ptime_changes"] == 1
    # played out at the peer's 30 ms pace (at 20 ms ticks a third of the packets came out late and half
    # of the ticks were concealment); the bounds leave room for a loaded CI machine
    assert stats["receive_ptime_ms"] == 30
    assert stats["late_packets"] <= 8 and stats["concealed_frames"] <= 16
    assert len(rec.frames) >= 60
    decoded = PcmaCodec().decode(b"".join(p.rtp[12:] for p in packets))
    voiced = [level_dbfs(f) for f, _ in rec.frames]
    assert max(voiced) > level_dbfs(decoded) - 10     # the speech is there at its level
    assert rec.digits == []


async def test_inband_dtmf_over_pcmu_without_telephone_event(open_session, peer) -> None:
    session, rec = await open_session()
    session.start(media("PCMU", 0, peer.port, te=None))
    audio = bytes(1600) + dtmf_tone("5", 120) + bytes(4800)
    codec = PcmuCodec()
    start = time.monotonic()
    for i in range(len(audio) // 320):
        await asyncio.sleep(max(0.0, start + i * 0.02 - time.monotonic()))
        peer.send(rtp(500 + i, 160 * i, codec.encode(audio[i * 320:(i + 1) * 320])), session.local_port)
    await wait_until(lambda: len(rec.digits) == 1)
    assert (rec.digits[0].digit, rec.digits[0].mode) == ("5", DtmfMode.INBAND)


async def test_bad_datagrams_and_raising_callbacks_never_stop_the_session(open_session, peer) -> None:
    frames: list[bytes] = []

    def broken_on_frame(frame: bytes, ts: int) -> None:
        frames.append(frame)
        raise RuntimeError("consumer bug")

    session, rec = await open_session(on_frame=broken_on_frame)
    session.start(media("PCMU", 0, peer.port, te=101))
    port = session.local_port
    peer.send(b"\x00garbage", port)
    peer.send(b"\x80", port)
    peer.send(bytes([0x40]) + bytes(20), port)                    # RTP version 1
    peer.send(rtp(1, 1, bytes(4000)), port)                       # oversized
    peer.send(rtp(2, 160, bytes(160), pt=18), port)                # payload type not negotiated
    peer.send(rtp(3, 320, b"\x05\x80", pt=101), port)              # telephone-event under 4 bytes
    peer.send(rtp(4, 480, b"\x05\x80\x00", pt=101), port)
    peer.send(bytes(20), port)                                   # zeros (version 0)
    tone = PcmuCodec().encode(sine(500, 20, 8000))
    for i in range(25):
        peer.send(rtp(10 + i, 640 + 160 * i, tone), port)
        await asyncio.sleep(0.01)
    await wait_until(lambda: len(frames) >= 30)
    stats = session.stats()
    assert stats["dropped_malformed"] >= 3 and stats["dropped_oversized"] == 1
    assert stats["dropped_payload_type"] == 1 and stats["bad_dtmf_events"] == 2
    assert stats["callback_errors"] >= 30
    assert any(level_dbfs(frame) > -20 for frame in frames)


async def test_play_input_validation_and_resampling(open_session, peer) -> None:
    session, rec = await open_session()
    with pytest.raises(ValueError, match="sample_rate 1000"):
        session.play("u", bytes(100), 1000, last=True)
    with pytest.raises(ValueError, match="whole s16"):
        session.play("u", bytes(101), 16000, last=True)
    with pytest.raises(ValueError, match="utterance_id"):
        session.play("", bytes(100), 16000, last=True)
    session.play("tts", sine(300, 250, 22050), 22050, last=False)
    session.play("tts", sine(300, 250, 22050), 22050, last=True)
    session.start(media("PCMU", 0, peer.port))
    await wait_until(lambda: any(r.finished for r in rec.reports))
    assert rec.reports[-1].total_ms in (500, 520)


async def test_close_releases_ports_and_updates_metrics(open_session, allocator, peer) -> None:
    def sent() -> float:
        return REGISTRY.get_sample_value("dialtone_rtp_packets_sent_total", {"codec": "PCMA"}) or 0.0

    before = sent()
    session, _ = await open_session()
    session.start(media("PCMA", 8, peer.port))
    await wait_until(lambda: len(peer.received) >= 5)
    assert allocator.in_use == 1
    await session.close()
    await session.close()   # idempotent
    assert allocator.in_use == 0
    assert sent() - before == session.stats()["packets_out"] >= 5
    with pytest.raises(RuntimeError, match="closed"):
        session.play("u", bytes(640), 16000, last=True)


async def test_ipv6_loopback_pair(open_session) -> None:
    a, _ = await open_session(host="::1", name="a6")
    b, rec_b = await open_session(host="::1", name="b6")
    a.start(media("PCMU", 0, b.local_port, host="::1"))
    b.start(media("PCMU", 0, a.local_port, host="::1"))
    a.play("u", sine(440, 600, 16000), 16000, last=True)
    await wait_until(lambda: sum(level_dbfs(f) > -20 for f, _ in rec_b.frames) >= 10)
    assert b.stats()["packets_in"] >= 10


async def test_rtcp_reports_go_where_the_peers_rtcp_comes_from_and_bye_at_close(open_session, peer) -> None:
    from aiortp.packet import RtcpByePacket, RtcpPacket, RtcpSrPacket
    from dialtone.media_gateway.media.rtcp import build_report

    session, _ = await open_session()
    session.rtcp_interval_s = 0.05
    session.start(media("PCMU", 0, peer.port))
    tone = PcmuCodec().encode(sine(500, 20, 8000))
    peer.send(build_report(ssrc=0x1234, cname="peer", packets_sent=0, octets_sent=0, rtp_timestamp=0, block=None),
              session.local_port + 1)
    for i in range(10):
        peer.send(rtp(100 + i, 160 * i, tone), session.local_port)
        await asyncio.sleep(0.01)
    await wait_until(lambda: any(isinstance(RtcpPacket.parse(d)[0], RtcpSrPacket)
                                 and RtcpPacket.parse(d)[0].reports for d in peer.rtcp))
    sr = next(RtcpPacket.parse(d)[0] for d in peer.rtcp if RtcpPacket.parse(d)[0].reports)
    our_ssrc = peer.received[0][1].ssrc
    assert sr.ssrc == our_ssrc and sr.sender_info.packet_count > 0
    assert sr.reports[0].ssrc == 0x1234 and sr.reports[0].highest_sequence >= 100
    assert session.stats()["rtcp_in"] == 1
    await session.close()
    await wait_until(lambda: isinstance(RtcpPacket.parse(peer.rtcp[-1])[0], RtcpByePacket))


async def test_remote_must_be_an_ip_and_unspecified_means_wait_for_the_peer(open_session, peer) -> None:
    session, _ = await open_session()
    with pytest.raises(ValueError, match="must be an IP address"):
        session.start(media("PCMU", 0, 4000, host="pbx.example.com"))
    session.start(media("PCMU", 0, 4000, host="0.0.0.0"))
    await asyncio.sleep(0.1)
    assert session.stats()["packets_out"] == 0
    peer.send(rtp(1, 0, PCMU_SILENCE), session.local_port)
    await wait_until(lambda: len(peer.received) >= 3)


async def test_reinvite_to_a_new_address_moves_the_stream(open_session, peer) -> None:
    """A re-INVITE with another c=/m= port: packets go there, the old latch is forgotten."""
    from tests.media_gateway.media.helpers import RawPeer

    session, _ = await open_session()
    session.start(media("PCMU", 0, peer.port))
    peer.send(rtp(1, 0, PCMU_SILENCE), session.local_port)      # latch onto the first peer
    await wait_until(lambda: len(peer.received) >= 3 and session.stats()["packets_in"] == 1)
    second = await RawPeer.open()
    try:
        session.update(media("PCMU", 0, second.port))
        moved_at = len(peer.received)
        await wait_until(lambda: len(second.received) >= 3)
        assert len(peer.received) <= moved_at + 1
    finally:
        second.close()


async def test_port_range_exhaustion_is_a_clear_error(peer) -> None:
    from dialtone.media_gateway.media import MediaSession, PortAllocator, PortsExhausted

    from tests.helpers import free_port

    base = min(free_port(), 64000) & ~1
    allocator = PortAllocator(base, base + 2)

    def nothing(*_args: object) -> None:
        return None

    kwargs = dict(bind_host="127.0.0.1", port_allocator=allocator, on_frame=nothing, on_dtmf=nothing,
                  on_playback=nothing)
    first = await MediaSession.open(session_id="one", **kwargs)  # type: ignore[arg-type]
    try:
        with pytest.raises(PortsExhausted, match="no free RTP port pair"):
            await MediaSession.open(session_id="two", **kwargs)  # type: ignore[arg-type]
    finally:
        await first.close()
    again = await MediaSession.open(session_id="three", **kwargs)  # type: ignore[arg-type]
    assert again.local_port == first.local_port
    await again.close()


async def test_sipp_rtp_echo_returns_our_stream(open_session) -> None:
    """sipp (-rtp_echo) reflects our PCMA stream: a third-party RTP stack accepts our packets, and
    what it sends back comes out as 16 kHz frames of the tone we played."""
    import shutil
    import subprocess

    from tests.helpers import free_port

    sipp = shutil.which("sipp")
    assert sipp is not None, "sipp is not installed (Debian sip-tester; scripts/system-deps.sh test)"
    media_port = free_port()
    proc = subprocess.Popen(
        [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(free_port()), "-cp", str(free_port()),
         "-mi", "127.0.0.1", "-mp", str(media_port), "-rtp_echo", "-timeout", "20s", "-nostdin"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        session, rec = await open_session()
        session.start(media("PCMA", 8, media_port, te=None))
        session.play("tone", sine(440, 4000, 16000, dbfs=-12), 16000, last=True)
        await wait_until(lambda: sum(level_dbfs(f) > -20 for f, _ in rec.frames) >= 25, timeout=10)
        loud = [level_dbfs(f) for f, _ in rec.frames if level_dbfs(f) > -20]
        assert abs(float(np.median(loud)) + 12) < 2
        assert session.stats()["packets_lost"] == 0
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize(("codec", "pt", "rate"), [("PCMA", 8, 8000), ("opus", 111, 48000)])
async def test_interop_with_aiortps_own_session(open_session, codec: str, pt: int, rate: int) -> None:
    """aiortp's RTPSession (its own pacer and DTMF sender) as the far end: audio both ways and a digit."""
    from aiortp import RTPSession
    from aiortp.codecs import get_codec

    from tests.helpers import free_port

    session, rec = await open_session()
    heard: list[bytes] = []
    far_port = free_port()
    far = await RTPSession.create(local_addr=("127.0.0.1", far_port), remote_addr=("127.0.0.1", session.local_port),
                                  payload_type=pt, codec=get_codec(pt), clock_rate=rate, dtmf_payload_type=101,
                                  paced=True)
    far.on_audio = lambda pcm, _ts: heard.append(pcm)
    try:
        session.start(media(codec, pt, far_port, te=101))
        session.play("hi", sine(500, 1500, 16000, dbfs=-12), 16000, last=True)
        far_tone = sine(800, 20, get_codec(pt).sample_rate, dbfs=-12)
        for _ in range(50):
            far.send_audio_pcm_auto(far_tone)
        await wait_until(lambda: sum(level_dbfs(f) > -20 for f, _ in rec.frames) >= 30)
        far.send_dtmf("7", duration_ms=120, timestamp=123456)
        await wait_until(lambda: [d.digit for d in rec.digits] == ["7"])
        await wait_until(lambda: sum(level_dbfs(p) > -20 for p in heard) >= 30)
        assert rec.digits[0].mode == DtmfMode.RFC4733 and rec.digits[0].duration_ms == 120
    finally:
        await far.close()


@pytest.mark.parametrize(("codec", "pt"), [("PCMU", 0), ("opus", 111)])
async def test_fuzzed_rtp_from_the_peer_never_breaks_the_session(open_session, peer, codec: str, pt: int) -> None:
    """2000 datagrams of random headers/payloads from the latched peer: the clock keeps delivering frames,
    nothing raises, and a clean stream afterwards plays again."""
    import random

    rng = random.Random(11)
    session, rec = await open_session()
    session.start(media(codec, pt, peer.port, te=101))
    for i in range(2000):
        kind = rng.random()
        if kind < 0.5:
            data = rtp(rng.randrange(65536), rng.randrange(2**32), rng.randbytes(rng.randrange(0, 400)),
                       pt=rng.choice([pt, 101, 13, 96]), ssrc=rng.choice([1, 2, rng.randrange(2**32)]))
        else:
            data = rng.randbytes(rng.randrange(0, 300))
        peer.send(data, session.local_port)
        if i % 100 == 0:
            await asyncio.sleep(0.005)
    frames_after_fuzz = len(rec.frames)
    stats = session.stats()
    assert stats["callback_errors"] == 0 and stats["socket_errors"] == 0
    if codec == "PCMU":
        codec_pcm = PcmuCodec().encode(sine(500, 20, 8000))
        step = 160
    else:
        from dialtone.media_gateway.media.codecs import make_codec

        encoder = make_codec("opus")
        codec_pcm = b""
        step = 960
    start = time.monotonic()
    for i in range(60):
        await asyncio.sleep(max(0.0, start + i * 0.02 - time.monotonic()))
        payload = codec_pcm if codec == "PCMU" else encoder.encode(sine(500, 20, 48000))
        peer.send(rtp(30000 + i, 5_000_000 + i * step, payload, pt=pt, ssrc=0xABCD), session.local_port)
    await wait_until(lambda: sum(level_dbfs(f) > -20 for f, _ in rec.frames[frames_after_fuzz:]) >= 20)

"""Port pairs from the configured range, and the codec table."""

from __future__ import annotations

import socket

import pytest
from dialtone.common.audio import FRAME_BYTES
from dialtone.media_gateway.media.codecs import ToCodecRate, ToSixteenK, make_codec
from dialtone.media_gateway.media.ports import PortAllocator, PortsExhausted

from tests.helpers import free_port
from tests.media_gateway.media.helpers import level_dbfs, sine


def _range(size: int) -> tuple[int, int]:
    base = free_port() & ~1
    return base, base + size


def test_pairs_are_even_rtp_and_odd_rtcp_and_exhaust_cleanly() -> None:
    low, high = _range(6)
    allocator = PortAllocator(low, high)
    got = []
    try:
        while True:
            try:
                got.append(allocator.allocate("127.0.0.1"))
            except PortsExhausted as exc:
                assert "no free RTP port pair" in str(exc)
                break
        for port, rtp_sock, rtcp_sock in got:
            assert port % 2 == 0 and low <= port < high
            assert rtp_sock.getsockname()[1] == port and rtcp_sock.getsockname()[1] == port + 1
        assert allocator.in_use == len(got) >= 1
    finally:
        for _, a, b in got:
            a.close()
            b.close()


def test_released_port_is_reused_and_a_busy_port_skipped() -> None:
    low, high = _range(4)
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        busy.bind(("127.0.0.1", low + (low % 2)))
    except OSError:
        busy.close()
        pytest.fail("test port range was taken concurrently; retry")
    allocator = PortAllocator(low, high)
    try:
        port, a, b = allocator.allocate("127.0.0.1")
        assert port == low + (low % 2) + 2   # the busy one was skipped
        a.close()
        b.close()
        allocator.release(port)
        port2, a2, b2 = allocator.allocate("127.0.0.1")
        assert port2 == port
        a2.close()
        b2.close()
    finally:
        busy.close()


def test_ipv6_loopback() -> None:
    low, high = _range(10)
    port, a, b = PortAllocator(low, high).allocate("::1")
    assert a.family == socket.AF_INET6 and a.getsockname()[1] == port
    a.close()
    b.close()


@pytest.mark.parametrize(("low", "high"), [(80, 2000), (5000, 5000), (5001, 5002), (60000, 70000)])
def test_bad_ranges_rejected(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="RTP port range"):
        PortAllocator(low, high)


@pytest.mark.parametrize(("name", "ptime", "rate", "samples"), [
    ("PCMU", 20, 8000, 160), ("pcma", 30, 8000, 240), ("opus", 20, 48000, 960), ("OPUS", 40, 48000, 1920)])
def test_codec_table(name: str, ptime: int, rate: int, samples: int) -> None:
    codec = make_codec(name, ptime)
    assert (codec.sample_rate, codec.samples_per_frame) == (rate, samples)


@pytest.mark.parametrize(("name", "ptime", "message"), [
    ("G729", 20, "unsupported codec 'G729'"), ("PCMU", 25, "G.711 ptime 25"), ("opus", 30, "Opus ptime 30")])
def test_codec_errors(name: str, ptime: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_codec(name, ptime)


@pytest.mark.parametrize("name", ["PCMU", "PCMA", "opus"])
def test_round_trip_through_codec_keeps_a_tone(name: str) -> None:
    """16 kHz frames -> codec rate -> encode -> decode -> 16 kHz: one frame out per frame in, tone intact."""
    codec = make_codec(name)
    to_codec, to16k = ToCodecRate(codec), ToSixteenK(codec.sample_rate)
    tone = sine(400, 1000, 16000, dbfs=-12)
    out = []
    for i in range(0, len(tone), FRAME_BYTES):
        pcm = to_codec.convert(tone[i:i + FRAME_BYTES])
        assert len(pcm) == codec.samples_per_frame * 2
        frames = to16k.convert(codec.decode(codec.encode(pcm)))
        assert all(len(f) == FRAME_BYTES for f in frames)
        out += frames
    assert len(out) == 50
    assert abs(level_dbfs(b"".join(out[10:])) - (-12.0)) < 1.5

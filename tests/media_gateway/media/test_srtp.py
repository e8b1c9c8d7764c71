"""SRTP contexts without sockets: two ends with swapped keys talk; tampering and replays are dropped."""

from __future__ import annotations

import pytest
from aiortp.packet import RtpPacket
from dialtone.media_gateway.media.srtp import SrtpContext, SrtpError
from dialtone.media_gateway.media_types import SrtpKeys

OURS, THEIRS = bytes(range(30)), bytes(range(50, 80))


def _pair(suite: str = "AES_CM_128_HMAC_SHA1_80") -> tuple[SrtpContext, SrtpContext]:
    return (SrtpContext(SrtpKeys(suite, 1, OURS, THEIRS)), SrtpContext(SrtpKeys(suite, 1, THEIRS, OURS)))


def _rtp(seq: int) -> bytes:
    return RtpPacket(payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=0x1234,
                     payload=b"\xff" * 160).serialize()


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_round_trip_hides_the_payload(suite: str) -> None:
    """What one end protects the other unprotects; on the wire the payload is no longer plain."""
    gateway, phone = _pair(suite)
    packet = _rtp(1)
    wire = gateway.protect(packet, rtcp=False)
    assert b"\xff" * 32 not in wire and len(wire) > len(packet)
    assert phone.unprotect(wire, rtcp=False) == packet


def test_tampered_and_replayed_packets_are_refused() -> None:
    """A flipped bit fails authentication; the same packet twice is a replay."""
    gateway, phone = _pair()
    wire = gateway.protect(_rtp(7), rtcp=False)
    tampered = wire[:20] + bytes([wire[20] ^ 1]) + wire[21:]
    with pytest.raises(SrtpError):
        phone.unprotect(tampered, rtcp=False)
    phone.unprotect(wire, rtcp=False)
    with pytest.raises(SrtpError):
        phone.unprotect(wire, rtcp=False)


def test_unknown_suite_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="not supported"):
        SrtpContext(SrtpKeys("AES_256_CM_HMAC_SHA1_80", 1, OURS, THEIRS))

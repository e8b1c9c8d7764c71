"""RTCP reports we send (RFC 3550 §6): SR while sending, RR otherwise, SDES CNAME, BYE at close.

aiortp's packet classes serialize; this module only fills them in (its session does the same
inside an RTCP loop we do not use, since our session owns its own clock and sockets).
"""

from __future__ import annotations

import datetime

from aiortp.clock import datetime_to_ntp
from aiortp.packet import (
    RtcpByePacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)
from aiortp.stats import StreamStatistics

_SDES_CNAME = 1


def receiver_block(remote_ssrc: int, stats: StreamStatistics) -> RtcpReceiverInfo:
    """The report block about the stream we receive (no LSR/DLSR: we do not track the peer's SRs)."""
    return RtcpReceiverInfo(ssrc=remote_ssrc, fraction_lost=stats.fraction_lost,
                            packets_lost=stats.packets_lost,
                            highest_sequence=(stats.cycles + (stats.max_seq or 0)) & 0xFFFFFFFF,
                            jitter=stats.jitter, lsr=0, dlsr=0)


def build_report(*, ssrc: int, cname: str, packets_sent: int, octets_sent: int, rtp_timestamp: int,
                 block: RtcpReceiverInfo | None, now: datetime.datetime | None = None) -> bytes:
    """A compound packet: SR (when we have sent media) or RR, then SDES with our CNAME."""
    blocks = [block] if block is not None else []
    if packets_sent:
        ntp = datetime_to_ntp(now or datetime.datetime.now(datetime.UTC))
        head: RtcpSrPacket | RtcpRrPacket = RtcpSrPacket(
            ssrc=ssrc, sender_info=RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=rtp_timestamp,
                                                  packet_count=packets_sent & 0xFFFFFFFF,
                                                  octet_count=octets_sent & 0xFFFFFFFF),
            reports=blocks)
    else:
        head = RtcpRrPacket(ssrc=ssrc, reports=blocks)
    sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(_SDES_CNAME, cname.encode()[:255])])])
    return bytes(head) + bytes(sdes)


def build_bye(ssrc: int) -> bytes:
    return bytes(RtcpByePacket(sources=[ssrc]))

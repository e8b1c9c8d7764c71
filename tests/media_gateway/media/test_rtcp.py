"""RTCP reports: SR while sending, RR otherwise, report blocks from the received stream, BYE."""

from __future__ import annotations

from aiortp.packet import RtcpByePacket, RtcpPacket, RtcpRrPacket, RtcpSdesPacket, RtcpSrPacket, RtpPacket
from aiortp.stats import StreamStatistics
from dialtone.media_gateway.media.rtcp import build_bye, build_report, receiver_block


def test_sender_report_with_block_and_cname() -> None:
    stats = StreamStatistics(clockrate=8000)
    for seq in (10, 11, 13, 14):   # 12 lost
        stats.add(RtpPacket(sequence_number=seq, timestamp=seq * 160, ssrc=77))
    block = receiver_block(77, stats)
    parsed = RtcpPacket.parse(build_report(ssrc=5, cname="dialtone-4000", packets_sent=50, octets_sent=8000,
                                           rtp_timestamp=1234, block=block))
    sr, sdes = parsed
    assert isinstance(sr, RtcpSrPacket) and isinstance(sdes, RtcpSdesPacket)
    assert (sr.ssrc, sr.sender_info.packet_count, sr.sender_info.octet_count, sr.sender_info.rtp_timestamp) == \
        (5, 50, 8000, 1234)
    [report] = sr.reports
    assert (report.ssrc, report.packets_lost, report.highest_sequence) == (77, 1, 14)
    assert report.fraction_lost == 256 // 5
    assert sdes.chunks[0].items == [(1, b"dialtone-4000")]


def test_receiver_report_before_sending_anything() -> None:
    parsed = RtcpPacket.parse(build_report(ssrc=9, cname="x", packets_sent=0, octets_sent=0, rtp_timestamp=0,
                                           block=None))
    assert isinstance(parsed[0], RtcpRrPacket) and parsed[0].ssrc == 9 and parsed[0].reports == []


def test_bye() -> None:
    [bye] = RtcpPacket.parse(build_bye(42))
    assert isinstance(bye, RtcpByePacket) and bye.sources == [42]

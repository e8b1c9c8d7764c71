"""A real softphone (baresip, headless: aufile as microphone, sndfile dumps what it hears) calls the gateway."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trustme
from dialtone.common.audio import rms_dbfs
from dialtone.common.errors import InvalidArgument
from dialtone.media_gateway import control
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb
from prometheus_client import REGISTRY

from tests.media_gateway.baresip import Baresip, RtpCapture, plain_g711_silence
from tests.media_gateway.media_spy import MediaSpy
from tests.media_gateway.support import gateway_config, start_gateway, start_speech, wait_until
from tests.media_gateway.torture import exchange


async def _talk(phone: Baresip, speech: Any, dial: str) -> Any:
    """The common call story: dial, audio both ways, a greeting played whole, three digits, hang up."""
    await phone.command("dial", dial)
    await wait_until(lambda: bool(speech.streams and speech.streams[0].uplink), 10, "CallStart")
    stream = speech.streams[0]
    await wait_until(lambda: len(stream.of("audio")) >= 10, 10, "caller audio")
    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()  # 1 s
    stream.send(play_audio=spb.PlayAudio(utterance_id="greeting", pcm=tone, sample_rate=16000, last=True))
    await wait_until(lambda: bool(stream.of("playback_finished")), 10, "PlaybackFinished")
    for digit in "12#":
        await phone.command("sndcode", digit)
        await asyncio.sleep(0.3)
    await wait_until(lambda: len(stream.of("dtmf")) >= 3, 10, "three digits")
    await asyncio.sleep(0.5)   # some silence after the greeting: a plain G.711 stream shows it as 0xFF runs
    await phone.command("hangup")
    await wait_until(lambda: bool(stream.of("call_end")), 10, "CallEnd")
    return stream


def _assert_story(stream: Any, phone: Baresip) -> None:
    assert max(rms_dbfs(f.pcm) for f in stream.of("audio")) > -30.0, "the softphone's tone did not arrive"
    assert [(d.digit, d.source) for d in stream.of("dtmf")] == [
        (digit, common_pb2.DTMF_SOURCE_RFC4733) for digit in "12#"]
    finished = stream.of("playback_finished")[0]
    assert finished.utterance_id == "greeting" and not finished.interrupted
    assert stream.of("call_end")[0].reason == "caller_hangup"
    assert phone.heard_dbfs() > -30.0, "the softphone heard no audio from us"


async def test_baresip_calls_in_audio_both_ways_dtmf_and_clean_hangup(tmp_path: Path) -> None:
    """baresip dials the gateway: its tone arrives as frames, our PlayAudio reaches its speaker, its RFC 4733
    digits arrive in order, and its hang-up ends the call with CallEnd(caller_hangup). On the wire (tcpdump)
    our idle frames are plain G.711 silence: the control for the SRTP test below."""
    server, speech, address = await start_speech()
    config = gateway_config(address)
    app = await start_gateway(config)
    phone = Baresip(tmp_path, "<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMU")
    try:
        with RtpCapture(tmp_path / "rtp.pcap", config.rtp.port_low, config.rtp.port_high) as capture:
            await phone.start()
            stream = await _talk(phone, speech, f"sip:bot@127.0.0.1:{app.sip_port}")
            await phone.stop()
    finally:
        await phone.stop()
        await app.close()
        await server.stop(0)
    start = stream.uplink[0].call_start.call
    assert start.callee == "bot" and start.caller.startswith("sip:tester@127.0.0.1")
    _assert_story(stream, phone)
    assert plain_g711_silence(capture.payloads(MediaSpy.opened[-1].local_port)) > 10


async def test_baresip_over_tls_with_srtp_required(tmp_path: Path) -> None:
    """SIP over TLS with SDES-SRTP required: the same call story works, and tcpdump sees no plain G.711
    silence on the RTP ports (every packet encrypted); a plain-RTP offer to the same gateway gets 488."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "sip.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "sip.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server, speech, address = await start_speech()
    config = gateway_config(address, tls_port=0, tls_cert_file=str(tmp_path / "sip.crt"),
                            tls_key_file=str(tmp_path / "sip.key"), srtp="required")
    app = await start_gateway(config)
    secure = tmp_path / "secure"
    secure.mkdir()
    phone = Baresip(secure, "<sip:tester@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand",
                    extra_config=f"sip_cafile {tmp_path / 'ca.pem'}\n", modules=("srtp.so",))
    try:
        with RtpCapture(tmp_path / "srtp.pcap", config.rtp.port_low, config.rtp.port_high) as capture:
            await phone.start()
            stream = await _talk(phone, speech, f"sip:bot@127.0.0.1:{app.sip_tls_port};transport=tls")
            await phone.stop()
        _assert_story(stream, phone)
        payloads = capture.payloads(MediaSpy.opened[-1].local_port)
        assert len(payloads) > 100, "no RTP captured"
        assert plain_g711_silence(payloads) == 0, "plain G.711 on the wire of an SRTP call"
        plain = await exchange(app.sip_port, _plain_invite(), 0.6)
        assert 488 in plain, plain
    finally:
        await phone.stop()
        await app.close()
        await server.stop(0)


def _plain_invite() -> bytes:
    sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    return (f"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{os.urandom(4).hex()}"
            f"\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: plain-{os.urandom(6).hex()}"
            f"\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def _tls_files(tmp_path: Path, ca: trustme.CA, name: str) -> tuple[Path, Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = tmp_path / f"{name}.crt", tmp_path / f"{name}.key", tmp_path / f"{name}-ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(paths[0]))
    cert.private_key_pem.write_to_path(str(paths[1]))
    ca.cert_pem.write_to_path(str(paths[2]))
    return paths


async def test_an_outbound_call_over_tls_with_srtp_to_baresip(tmp_path: Path) -> None:
    """Originate to sips:bob@baresip: the gateway dials SIP over TLS (baresip's certificate verified
    against sip.tls_ca_file), offers SRTP (required), baresip answers; its tone reaches the speech side,
    our prompt reaches its speaker, tcpdump sees no plain G.711. A gateway trusting another CA refuses
    baresip's certificate: nothing reaches baresip."""
    ca = trustme.CA()
    cert, key, ca_file = _tls_files(tmp_path, ca, "gateway")
    server, speech, address = await start_speech()
    config = gateway_config(address, tls_port=0, tls_cert_file=str(cert), tls_key_file=str(key),
                            tls_ca_file=str(ca_file), srtp="required")
    app = await start_gateway(config)
    peer = tmp_path / "peer"
    peer.mkdir()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(peer / "peer.pem"))
    phone = Baresip(peer, "<sip:bob@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand;"
                    "answermode=auto", extra_config=f"sip_certificate {peer / 'peer.pem'}\nsip_cafile {ca_file}\n",
                    modules=("srtp.so",))
    try:
        with RtpCapture(tmp_path / "out.pcap", config.rtp.port_low, config.rtp.port_high) as capture:
            await phone.start()
            plain = f"sip:bob@127.0.0.1:{phone.sip_port}"
            with pytest.raises(InvalidArgument, match="SDES keys only travel over TLS"):
                await control.originate(app.calls, False, to_uri=plain, dialog="bot", caller_id="dialtone",
                                        headers=[])
            placed = await control.originate(app.calls, False, to_uri=f"sips:bob@127.0.0.1:{phone.sip_port + 1}",
                                             dialog="bot", caller_id="dialtone", headers=[])
            await wait_until(lambda: bool(speech.streams and speech.streams[0].uplink), 15, "the call answered")
            stream = speech.streams[0]
            start = stream.of("call_start")[0].call
            assert (start.direction, start.call_id) == (common_pb2.DIRECTION_OUTBOUND, placed.call_id)
            await wait_until(lambda: any(rms_dbfs(f.pcm) > -30.0 for f in stream.of("audio")), 10, "baresip's tone")
            tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()
            stream.send(play_audio=spb.PlayAudio(utterance_id="hello", pcm=tone, sample_rate=16000, last=True))
            await wait_until(lambda: bool(stream.of("playback_finished")), 10, "PlaybackFinished")
            await asyncio.sleep(0.5)
            assert control.hangup(app.calls, stream.session_id)
            await wait_until(lambda: bool(stream.of("call_end")), 10, "CallEnd")
            await phone.stop()
        payloads = capture.payloads(MediaSpy.opened[-1].local_port)
        assert len(payloads) > 50, "no RTP captured"
        assert plain_g711_silence(payloads) == 0, "plain G.711 on the wire of an SRTP call"
        assert phone.heard_dbfs() > -30.0, "baresip heard nothing from us"
        assert "SRTP is Enabled" in (peer / "baresip.log").read_text(errors="replace")
    finally:
        await phone.stop()
        await app.close()

    # the same call from a gateway that trusts another CA: the handshake fails, baresip sees no INVITE
    other_cert, other_key, other_ca = _tls_files(tmp_path, trustme.CA(), "other")
    config = gateway_config(address, tls_port=0, tls_cert_file=str(other_cert), tls_key_file=str(other_key),
                            tls_ca_file=str(other_ca), srtp="required")
    app = await start_gateway(config)
    peer = tmp_path / "peer-again"
    peer.mkdir()
    (peer / "peer.pem").write_bytes((tmp_path / "peer" / "peer.pem").read_bytes())
    phone = Baresip(peer, "<sip:bob@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand;"
                    "answermode=auto", extra_config=f"sip_certificate {peer / 'peer.pem'}\nsip_cafile {ca_file}\n",
                    modules=("srtp.so",))
    refused_before = REGISTRY.get_sample_value("dialtone_media_sip_tcp_closed_total", {"reason": "tls_handshake"}) or 0
    try:
        await phone.start()
        await control.originate(app.calls, False, to_uri=f"sips:bob@127.0.0.1:{phone.sip_port + 1}", dialog="bot",
                                caller_id="dialtone", headers=[])
        await wait_until(lambda: (REGISTRY.get_sample_value("dialtone_media_sip_tcp_closed_total",
                                                            {"reason": "tls_handshake"}) or 0) > refused_before,
                         10, "the handshake refused")
        await asyncio.sleep(0.5)
        assert len(speech.streams) == 1, "a call reached the speech side through an unverified peer"
        assert "answering call" not in (peer / "baresip.log").read_text(errors="replace")
    finally:
        await phone.stop()
        await app.close()
        await server.stop(0)

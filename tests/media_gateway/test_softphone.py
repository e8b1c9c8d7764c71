"""A real softphone (baresip, headless: aufile as microphone, sndfile dumps what it hears) calls the gateway."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import numpy as np
import trustme
from dialtone.common.audio import rms_dbfs
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb

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

"""A real softphone (baresip, headless: aufile as microphone, sndfile dumps what it hears) calls the gateway."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import trustme
from dialtone.common.audio import rms_dbfs
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb

from tests.helpers import free_port
from tests.media_gateway.media_spy import MediaSpy
from tests.media_gateway.support import free_udp_port, gateway_config, start_gateway, start_speech, wait_until
from tests.media_gateway.torture import exchange


async def _ctrl(port: int, command: str, params: str = "") -> bytes:
    """One command over baresip's ctrl_tcp (netstring-framed JSON)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"command": command, "params": params, "token": command}).encode()
    writer.write(str(len(body)).encode() + b":" + body + b",")
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(4096), 3)
    except TimeoutError:
        data = b""
    writer.close()
    return data


async def _ctrl_ready(port: int) -> None:
    for _ in range(100):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise AssertionError("baresip ctrl_tcp did not come up")


def _write_tone(path: Path, hz: float, seconds: float) -> None:
    samples = (np.sin(2 * np.pi * hz * np.arange(int(8000 * seconds)) / 8000) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.tobytes())


def _loudest_dbfs(path: Path) -> float:
    with wave.open(str(path), "rb") as dump:
        pcm = dump.readframes(dump.getnframes())
    windows = [pcm[i:i + 320] for i in range(0, len(pcm) - 320, 320)]
    return max((rms_dbfs(w) for w in windows), default=-120.0)


class Baresip:
    """baresip as a headless softphone: aufile as microphone, sndfile dumps what it hears, ctrl_tcp drives it."""

    def __init__(self, directory: Path, account: str, extra_config: str = "", modules: tuple[str, ...] = ()) -> None:
        binary = shutil.which("baresip")
        assert binary is not None, "baresip is not installed (Debian package baresip-core; scripts/system-deps.sh test)"
        self.binary = binary
        self.directory = directory
        self.sip_port, self.ctrl_port = free_udp_port(), free_port()
        _write_tone(directory / "mic.wav", 500, 4.0)
        (directory / "config").write_text(
            f"poll_method epoll\nsip_listen 127.0.0.1:{self.sip_port}\naudio_player aubridge,sink\n"
            f"audio_alert aubridge,sink\naudio_source aufile,{directory}/mic.wav\n"
            "module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule aubridge.so\n"
            + "".join(f"module {name}\n" for name in modules)
            + "module sndfile.so\nmodule_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}\nsnd_path {directory}\n{extra_config}")
        (directory / "accounts").write_text(account + "\n")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._log = (self.directory / "baresip.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            self.binary, "-f", str(self.directory), stdout=self._log, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL)
        await _ctrl_ready(self.ctrl_port)

    async def command(self, command: str, params: str = "") -> bytes:
        return await _ctrl(self.ctrl_port, command, params)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.command("quit")
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._log.close()

    def heard_dbfs(self) -> float:
        heard = list(self.directory.glob("dump-*-dec.wav"))
        assert len(heard) == 1, "the softphone recorded nothing"
        return _loudest_dbfs(heard[0])


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


class RtpCapture:
    """tcpdump on loopback over the gateway's RTP port range, read back as UDP payloads."""

    def __init__(self, path: Path, low: int, high: int) -> None:
        self.path, self.low, self.high = path, low, high
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RtpCapture:
        binary = shutil.which("tcpdump")
        assert binary is not None, "tcpdump is not installed (Debian package tcpdump; scripts/system-deps.sh test)"
        self.process = subprocess.Popen([binary, "-i", "lo", "-U", "-n", "-w", str(self.path),
                                         f"udp and portrange {self.low}-{self.high}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.process.stderr is not None
        line = self.process.stderr.readline()   # "listening on lo ..." once it captures
        assert b"listening" in line, line
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        time.sleep(0.3)
        self.process.terminate()
        self.process.wait(10)

    def payloads(self, port: int | None = None) -> list[bytes]:
        """The UDP payloads of the capture (pcap, Linux cooked or Ethernet framing of loopback), only those
        to or from ``port`` when given (other tests may run calls on this machine at the same time)."""
        data = self.path.read_bytes()
        link_type = struct.unpack_from("<I", data, 20)[0]
        offset, out = 24, []
        while offset + 16 <= len(data):
            captured = struct.unpack_from("<I", data, offset + 8)[0]
            frame = data[offset + 16:offset + 16 + captured]
            offset += 16 + captured
            ip = frame[14:] if link_type == 1 else frame[16:] if link_type == 113 else frame[4:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            header = (ip[0] & 0x0F) * 4
            source, destination = struct.unpack_from("!HH", ip, header)
            if port is None or port in (source, destination):
                out.append(ip[header + 8:])
        return out


def _plain_g711_silence(payloads: list[bytes]) -> int:
    """RTP packets whose PCMU payload is digital silence (0xFF): what our idle stream sends in the clear."""
    return sum(1 for packet in payloads if len(packet) >= 172 and packet[12:172] == b"\xff" * 160)


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
    assert _plain_g711_silence(capture.payloads(MediaSpy.opened[-1].local_port)) > 10


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
        assert _plain_g711_silence(payloads) == 0, "plain G.711 on the wire of an SRTP call"
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

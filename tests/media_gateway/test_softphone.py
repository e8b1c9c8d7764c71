"""A real softphone (baresip, headless: aufile as microphone, sndfile dumps what it hears) calls the gateway."""

from __future__ import annotations

import asyncio
import json
import shutil
import wave
from pathlib import Path

import numpy as np
from dialtone.common.audio import rms_dbfs
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb

from tests.helpers import free_port
from tests.media_gateway.support import free_udp_port, gateway_config, start_gateway, start_speech, wait_until


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


async def test_baresip_calls_in_audio_both_ways_dtmf_and_clean_hangup(tmp_path: Path) -> None:
    """baresip dials the gateway: its tone arrives as frames, our PlayAudio reaches its speaker, its RFC 4733
    digits arrive in order, and its hang-up ends the call with CallEnd(caller_hangup)."""
    binary = shutil.which("baresip")
    assert binary is not None, "baresip is not installed (Debian package baresip-core; scripts/system-deps.sh test)"
    server, speech, address = await start_speech()
    app = await start_gateway(gateway_config(address))
    _write_tone(tmp_path / "mic.wav", 500, 4.0)
    sip_port, ctrl_port = free_udp_port(), free_port()
    (tmp_path / "config").write_text(
        f"poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\naudio_player aubridge,sink\naudio_alert aubridge,sink\n"
        f"audio_source aufile,{tmp_path}/mic.wav\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\n"
        "module aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\n"
        f"module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\nsnd_path {tmp_path}\n")
    (tmp_path / "accounts").write_text("<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
    log = (tmp_path / "baresip.log").open("wb")
    phone = await asyncio.create_subprocess_exec(binary, "-f", str(tmp_path), stdout=log,
                                                 stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
    try:
        await _ctrl_ready(ctrl_port)
        await _ctrl(ctrl_port, "dial", f"sip:bot@127.0.0.1:{app.sip_port}")
        await wait_until(lambda: bool(speech.streams and speech.streams[0].uplink), 10, "CallStart")
        stream = speech.streams[0]
        await wait_until(lambda: len(stream.of("audio")) >= 10, 10, "caller audio")
        tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()  # 1 s
        stream.send(play_audio=spb.PlayAudio(utterance_id="greeting", pcm=tone, sample_rate=16000, last=True))
        await wait_until(lambda: bool(stream.of("playback_finished")), 10, "PlaybackFinished")
        for digit in "12#":
            await _ctrl(ctrl_port, "sndcode", digit)
            await asyncio.sleep(0.3)
        await wait_until(lambda: len(stream.of("dtmf")) >= 3, 10, "three digits")
        await _ctrl(ctrl_port, "hangup")
        await wait_until(lambda: bool(stream.of("call_end")), 10, "CallEnd")
        await _ctrl(ctrl_port, "quit")
        await asyncio.wait_for(phone.wait(), 10)
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
        log.close()
        await app.close()
        await server.stop(0)
    start = stream.uplink[0].call_start.call
    assert start.callee == "bot" and start.caller.startswith("sip:tester@127.0.0.1")
    assert max(rms_dbfs(f.pcm) for f in stream.of("audio")) > -30.0, "the softphone's tone did not arrive"
    assert [(d.digit, d.source) for d in stream.of("dtmf")] == [
        (digit, common_pb2.DTMF_SOURCE_RFC4733) for digit in "12#"]
    finished = stream.of("playback_finished")[0]
    assert finished.utterance_id == "greeting" and not finished.interrupted
    assert stream.of("call_end")[0].reason == "caller_hangup"
    heard = list(tmp_path.glob("dump-*-dec.wav"))
    assert len(heard) == 1 and _loudest_dbfs(heard[0]) > -30.0, "the softphone heard no audio from us"

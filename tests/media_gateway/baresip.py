"""baresip as a headless softphone (aufile as microphone, sndfile dumps what it hears, ctrl_tcp drives it)
and tcpdump on the RTP ports: the real peers of the SIP/SRTP tests (tests/media_gateway/test_softphone.py,
tests/e2e/test_up_secure.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
from dialtone.common.audio import rms_dbfs

from tests.helpers import free_port
from tests.media_gateway.support import free_udp_port


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

    def heard_so_far_dbfs(self, last_s: float = 1.0) -> float:
        """The loudest 20 ms of the last ``last_s`` seconds sndfile has written so far (mid-call the
        WAV header is not final yet, so the samples are read raw after it)."""
        heard = list(self.directory.glob("dump-*-dec.wav"))
        if not heard:
            return -120.0
        pcm = heard[0].read_bytes()[44:]
        pcm = pcm[len(pcm) % 2:][-int(last_s * 16000):]       # 8 kHz 16-bit
        windows = [pcm[i:i + 320] for i in range(0, len(pcm) - 320, 320)]
        return max((rms_dbfs(w) for w in windows), default=-120.0)

    def heard_dbfs(self) -> float:
        heard = list(self.directory.glob("dump-*-dec.wav"))
        assert len(heard) == 1, "the softphone recorded nothing"
        return _loudest_dbfs(heard[0])


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


def plain_g711_silence(payloads: list[bytes]) -> int:
    """RTP packets whose PCMU payload is digital silence (0xFF): what our idle stream sends in the clear."""
    return sum(1 for packet in payloads if len(packet) >= 172 and packet[12:172] == b"\xff" * 160)

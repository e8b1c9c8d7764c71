"""A real aiortc peer in the browser's role (a tone as its microphone, a level meter as its ear).

For tests and benchmarks of the WebRTC leg without a browser; Chromium itself is driven by
``tests/webrtc/test_browser.py``.
"""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from dialtone.common.audio import rms_dbfs


def tone_pcm(freq_hz: float, ms: int, rate: int = 16000, amplitude: float = 0.3) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype("<i2").tobytes()


class ToneTrack(MediaStreamTrack):
    """48 kHz mono 440 Hz, 20 ms frames, paced like a microphone."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += 960
            await asyncio.sleep(max(0.0, self._start + self._pts / 48000 - loop.time()))
        t = (np.arange(960) + self._pts) / 48000
        samples = (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype("<i2")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


class BrowserLikePeer:
    """Offers audio (sendrecv) and a ``dtmf`` data channel; records the level of what it hears."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.levels: list[float] = []
        self.channel = self.pc.createDataChannel("dtmf")
        self.pc.addTrack(ToneTrack())
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._record(track)))

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.levels.append(rms_dbfs(frame.to_ndarray().tobytes()))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

"""A recording stand-in for the speech gateway: a real grpc.aio server on a loopback port.

It plays the dialog's part: on CallStart it sends state and "say" notices and a greeting
(a tone, as PlayAudio chunks); once it has heard enough non-silent caller audio it sends
transcript notices and a new state; a DTMF digit moves the state again. It records what
came up the stream so tests can assert on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from dialtone.common.audio import rms_dbfs
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc

from tests.webrtc.peers import tone_pcm

LOUD_DBFS = -45.0
FRAMES_FOR_TRANSCRIPT = 25  # half a second of speech
GREETING_MS = 3000


class StandInSpeechGateway(spb_grpc.SpeechGatewayServicer):
    def __init__(self, transcript: str = "my order number is 4 5 6 7", greeting_ms: int = GREETING_MS) -> None:
        self.transcript = transcript
        self.greeting = tone_pcm(440, greeting_ms, amplitude=0.5)
        self.starts: list[spb.CallStart] = []
        self.frames = 0
        self.loud_frames = 0
        self.dtmf: list[common_pb2.Dtmf] = []
        self.playback_started: list[str] = []
        self.playback_finished: list[common_pb2.PlaybackFinished] = []
        self.transfer_results: list[common_pb2.TransferResult] = []
        self.call_ends: list[str] = []
        self.streams_closed = 0
        self.downlink: asyncio.Queue[spb.MediaDownlink | None] | None = None
        self._seq = 0

    def send(self, session_id: str, **payload: object) -> None:
        """Push a message down the open stream (tests use it for Hangup, Transfer, StopPlayback)."""
        assert self.downlink is not None, "no stream open"
        self._seq += 1
        self.downlink.put_nowait(spb.MediaDownlink(session_id=session_id, seq=self._seq, **payload))  # type: ignore[arg-type]

    def notice(self, session_id: str, kind: str, text: str) -> None:
        self.send(session_id, notice=spb.CallNotice(kind=kind, text=text))

    async def StreamCall(self, request_iterator: AsyncIterator[spb.MediaUplink],
                         context: grpc.aio.ServicerContext) -> AsyncIterator[spb.MediaDownlink]:
        self.downlink = downlink = asyncio.Queue()
        reader = asyncio.create_task(self._read(request_iterator))
        try:
            while True:
                item = await downlink.get()
                if item is None:
                    return
                yield item
        finally:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass  # we just cancelled it
            self.streams_closed += 1

    async def _read(self, request_iterator: AsyncIterator[spb.MediaUplink]) -> None:
        transcribed = False
        session_id = ""
        try:
            async for up in request_iterator:
                kind = up.WhichOneof("payload")
                session_id = up.session_id
                if kind == "call_start":
                    self.starts.append(up.call_start)
                    self._greet(session_id)
                elif kind == "audio":
                    self.frames += 1
                    if rms_dbfs(up.audio.pcm) > LOUD_DBFS:
                        self.loud_frames += 1
                    if not transcribed and self.loud_frames >= FRAMES_FOR_TRANSCRIPT:
                        transcribed = True
                        self.notice(session_id, "transcript.partial", self.transcript.rsplit(" ", 2)[0])
                        self.notice(session_id, "transcript.final", self.transcript)
                        self.notice(session_id, "state", "lookup")
                        self.notice(session_id, "say", "Let me look that up.")
                elif kind == "dtmf":
                    self.dtmf.append(up.dtmf)
                    self.notice(session_id, "state", "agent" if up.dtmf.digit == "0" else f"menu_{up.dtmf.digit}")
                elif kind == "playback_started":
                    self.playback_started.append(up.playback_started.utterance_id)
                elif kind == "playback_finished":
                    self.playback_finished.append(up.playback_finished)
                elif kind == "transfer_result":
                    self.transfer_results.append(up.transfer_result)
                elif kind == "call_end":
                    self.call_ends.append(up.call_end.reason)
        finally:
            assert self.downlink is not None
            self.downlink.put_nowait(None)

    def _greet(self, session_id: str) -> None:
        self.notice(session_id, "state", "greet")
        self.notice(session_id, "say", "Welcome to Acme. Say your order number, or press zero for an agent.")
        chunk = 3200  # 100 ms
        for offset in range(0, len(self.greeting), chunk):
            self.send(session_id, play_audio=spb.PlayAudio(
                utterance_id="greeting", pcm=self.greeting[offset:offset + chunk], sample_rate=16000,
                last=offset + chunk >= len(self.greeting)))


async def start_standin(servicer: StandInSpeechGateway) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    spb_grpc.add_SpeechGatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"

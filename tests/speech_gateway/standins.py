"""Real gRPC peers for the speech gateway's tests: a small grpc.aio ConversationRuntime
that records events and answers from a script, and a media client driving StreamCall."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from dialtone.common.audio import FRAME_BYTES, split_frames
from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import conversation_runtime_pb2_grpc as rpb_grpc
from dialtone.v1 import speech_gateway_pb2 as pb
from dialtone.v1 import speech_gateway_pb2_grpc as pb_grpc

ABORT = "abort"
Script = Callable[[int, rpb.SpeechEvent], "list[rpb.DialogAction] | str"]


def say(session_id: str, seq: int, text: str, uid: str, key: str | None = None,
        mode: int = cpb.BARGE_IN_MODE_ON, min_words: int = 0) -> rpb.DialogAction:
    return rpb.DialogAction(session_id=session_id, seq=seq, idempotency_key=key or f"{session_id}:{seq}:0",
                            say=rpb.Say(utterance_id=uid, text=text,
                                        barge_in=cpb.BargeInPolicy(mode=mode, min_words=min_words)))


class StandInRuntime(rpb_grpc.ConversationRuntimeServicer):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.streams: list[list[rpb.SpeechEvent]] = []
        self.ended = asyncio.Event()

    def events(self, kind: str | None = None) -> list[rpb.SpeechEvent]:
        all_events = [e for stream in self.streams for e in stream]
        return [e for e in all_events if kind is None or e.WhichOneof("payload") == kind]

    async def Converse(self, request_iterator, context):
        index = len(self.streams)
        self.streams.append([])
        async for event in request_iterator:
            self.streams[index].append(event)
            answer = self.script(index, event)
            if answer == ABORT:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "stand-in runtime restarting")
            for action in answer:
                yield action
            if event.WhichOneof("payload") == "call_ended":
                self.ended.set()


async def start_runtime(script: Script, host: str = "127.0.0.1", port: int = 0,
                        options: list[tuple[str, Any]] | None = None) -> tuple[grpc.aio.Server, StandInRuntime, str]:
    server = grpc.aio.server(options=options)
    runtime = StandInRuntime(script)
    rpb_grpc.add_ConversationRuntimeServicer_to_server(runtime, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, runtime, f"{host}:{bound}"


class MediaClient:
    """Drives one StreamCall: sends audio frames with call-relative timestamps, collects the downlink."""

    def __init__(self, address: str, session_id: str, playback_rate: int = 8000) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.call = pb_grpc.SpeechGatewayStub(self.channel).StreamCall()
        self.session_id = session_id
        self.playback_rate = playback_rate
        self.received: list[pb.MediaDownlink] = []
        self.arrived = asyncio.Condition()
        self._seq = 0
        self.now_ms = 0
        self._reader: asyncio.Task[None] | None = None
        self.status: grpc.StatusCode | None = None
        self.details = ""

    async def _read(self) -> None:
        try:
            async for message in self.call:
                async with self.arrived:
                    self.received.append(message)
                    self.arrived.notify_all()
        except grpc.aio.AioRpcError as exc:
            self.status, self.details = exc.code(), exc.details() or ""
        else:
            self.status = grpc.StatusCode.OK
        async with self.arrived:
            self.arrived.notify_all()

    async def send(self, **payload) -> None:
        self._seq += 1
        await self.call.write(pb.MediaUplink(session_id=self.session_id, seq=self._seq, **payload))

    async def start(self, resume: bool = False, **call_info) -> None:
        """CallStart (``resume``: of a call under way); ``call_info`` overrides CallInfo fields."""
        self._reader = asyncio.create_task(self._read())
        call = cpb.CallInfo(**{"caller": "sip:alice@127.0.0.1", "callee": "100", "call_id": "c1", **call_info})
        await self.send(call_start=pb.CallStart(call=call, sample_rate=16000, playback_sample_rate=self.playback_rate,
                                                resume=resume))

    async def audio(self, pcm: bytes, real_time: bool = False) -> None:
        """Frames as fast as the gateway takes them, or at the wire's pace (``real_time``) for checks
        that race a decode against call time."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, frame in enumerate(split_frames(pcm, FRAME_BYTES)):
            await self.send(audio=pb.AudioFrame(pcm=frame, timestamp_ms=self.now_ms))
            self.now_ms += 20
            if real_time:
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))
            elif i % 25 == 24:
                await asyncio.sleep(0.01)  # let the gateway keep up, as real-time pacing would

    async def silence(self, ms: int, real_time: bool = False) -> None:
        await self.audio(bytes(ms * 32), real_time)

    def of(self, kind: str) -> list[pb.MediaDownlink]:
        return [m for m in self.received if m.WhichOneof("payload") == kind]

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 20.0) -> object:
        async def until() -> object:
            async with self.arrived:
                while not (result := predicate()):
                    if self.status is not None:
                        raise AssertionError(f"stream ended ({self.status}: {self.details}) while waiting")
                    await self.arrived.wait()
                return result
        return await asyncio.wait_for(until(), timeout)

    async def end(self, reason: str = "caller_hangup") -> None:
        await self.send(call_end=pb.CallEnd(reason=reason))
        await self.call.done_writing()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 30)
        await self.channel.close()

    async def close(self) -> None:
        self.call.cancel()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.channel.close()

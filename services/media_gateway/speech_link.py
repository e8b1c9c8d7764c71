"""One call's gRPC bidi stream to a speech gateway (``SpeechGateway.StreamCall``), kept alive.

Up: ``CallStart`` first, then whatever the call queues (audio frames, DTMF, playback
reports, transfer results, ``CallEnd``). Down: each ``MediaDownlink`` goes to ``on_downlink``.
If the stream breaks while the call is up, the link reconnects -- to the next replica
address when several are configured -- and opens with ``CallStart(resume=true)``; the call
itself never notices beyond the frames lost meanwhile. A refusal (INVALID_ARGUMENT and the like:
the speech side will refuse the same stream again) is never retried: ``on_refused`` is told and
the call ends. The uplink queue is bounded: when the speech side stalls, audio frames are
dropped (counted), control messages are kept.
Every call's stream shares one channel per address (``ChannelPool``, plaintext or mutual TLS
per the gateway's ``tls`` section).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc
from dialtone.common.backoff import backoff_delay
from dialtone.common.grpc_channel import ChannelPool
from dialtone.common.grpc_validation import is_refusal
from dialtone.common.metrics import counter
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb
from dialtone.v1 import speech_gateway_pb2_grpc as spb_grpc

log = logging.getLogger(__name__)

__all__ = ["ChannelPool", "SpeechLink"]

STREAM_REFUSALS = counter("media_speech_stream_refusals_total", "speech streams the speech gateway refused, by code",
                          ["code"])
STREAM_RECONNECTS = counter("media_speech_stream_reconnects_total", "speech streams reopened with resume=true")
UPLINK_DROPPED = counter("media_speech_uplink_dropped_total", "uplink audio frames dropped: speech side too slow")

MAX_QUEUED = 500            # 10 s of audio
RECONNECT_INITIAL_S = 0.05  # the first retry comes quickly: it usually goes to another replica
RECONNECT_MAX_S = 2.0
CONNECT_TIMEOUT_S = 2.0
_CLOSE = object()


class SpeechLink:
    def __init__(self, addresses: list[str], session_id: str, call: common_pb2.CallInfo,
                 on_downlink: Callable[[spb.MediaDownlink], None], pool: ChannelPool,
                 on_refused: Callable[[str], None] | None = None) -> None:
        if not addresses:
            raise ValueError("SpeechLink needs at least one speech gateway address")
        self._addresses = addresses
        self._session_id = session_id
        self._call = call
        self._on_downlink = on_downlink
        self._on_refused = on_refused
        self._pool = pool
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._seq = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.connects = 0
        self.ever_connected = False
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"speech-link-{self._session_id}")

    def _next(self, **payload: object) -> spb.MediaUplink:
        # seq is stamped when the message is sent (in _uplink), so it increases in wire order even when
        # messages were queued before a (re)connect's CallStart.
        return spb.MediaUplink(session_id=self._session_id, **payload)  # type: ignore[arg-type]

    def send_audio(self, pcm: bytes, timestamp_ms: int) -> None:
        if self._closing:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            UPLINK_DROPPED.inc()
            return
        self._queue.put_nowait(self._next(audio=spb.AudioFrame(pcm=pcm, timestamp_ms=timestamp_ms)))

    def send(self, **payload: object) -> None:
        """Queue a control message (dtmf=, playback_started=, playback_finished=, transfer_result=)."""
        if self._closing:
            return
        self._queue.put_nowait(self._next(**payload))

    async def close(self, reason: str, timeout: float = 2.0) -> None:
        """Send CallEnd and let the stream finish (bounded by ``timeout``)."""
        if self._closing:
            return
        self._queue.put_nowait(self._next(call_end=spb.CallEnd(reason=reason)))
        self._closing = True
        self._queue.put_nowait(_CLOSE)
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _uplink(self, resume: bool) -> AsyncIterator[spb.MediaUplink]:
        self._seq += 1
        yield spb.MediaUplink(session_id=self._session_id, seq=self._seq, call_start=spb.CallStart(
            call=self._call, sample_rate=16000, playback_sample_rate=16000, resume=resume))
        while True:
            item = await self._queue.get()
            if item is _CLOSE:
                return
            assert isinstance(item, spb.MediaUplink)
            self._seq += 1
            item.seq = self._seq
            yield item

    async def _run(self) -> None:
        failures = 0   # in a row, since the last stream that brought a message
        while True:
            address = self._addresses[self.connects % len(self._addresses)]
            self.connects += 1
            channel = self._pool.get(address)
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT_S)
            except TimeoutError:
                if self._closing:
                    return
                log.warning("speech gateway %s unreachable; trying again", address)
                failures += 1
                await asyncio.sleep(backoff_delay(failures, RECONNECT_INITIAL_S, RECONNECT_MAX_S))
                continue
            # resume=true only once the speech side has seen this call's CallStart on an earlier stream.
            resume = self.ever_connected
            if resume:
                STREAM_RECONNECTS.inc()
            self.ever_connected = True
            try:
                stream = spb_grpc.SpeechGatewayStub(channel).StreamCall(self._uplink(resume))
                self.connected.set()
                async for down in stream:
                    failures = 0
                    try:
                        self._on_downlink(down)
                    except Exception:  # noqa: BLE001 - one bad message must not end the stream
                        log.exception("handling a downlink message failed")
                if self._closing:
                    return
                log.warning("speech stream ended by the server; reconnecting")
            except grpc.aio.AioRpcError as exc:
                if self._closing:
                    return
                if is_refusal(exc.code()):
                    STREAM_REFUSALS.labels(exc.code().name).inc()
                    log.warning("speech gateway %s refused the call's stream (%s: %.200s); not retrying",
                                address, exc.code().name, exc.details() or "")
                    self._closing = True
                    if self._on_refused is not None:
                        self._on_refused(exc.code().name)
                    return
                log.warning("speech stream to %s broke (%s); reconnecting", address, exc.code().name)
            self.connected.clear()
            failures += 1
            await asyncio.sleep(backoff_delay(failures, RECONNECT_INITIAL_S, RECONNECT_MAX_S))

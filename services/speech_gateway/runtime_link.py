"""One call's Converse stream to the conversation runtime, resumed when it breaks.

Events are numbered here (per session). The first message is CallStarted; after a
break the link reconnects (backing off, up to ``reconnect_s``) and opens with
Resume{last_event_seq, last_action_seq}, then re-sends the last ``REPLAYED_EVENTS``
events it wrote and the one whose write failed. A write that succeeded says nothing of
whether the runtime saved the event before it died; the runtime skips every event whose
seq it has already applied (its session keeps the last one), so replaying is safe and a
caller's answer is not lost with the replica that heard it. Actions at or below the last
action seq seen are dropped as repeats.

Only a break is resumed: the runtime gone, draining, its store down (UNAVAILABLE and the
like). A refusal (INVALID_ARGUMENT for an event it will not take, a Resume of a session it
does not know, an unhandled error on this call's event) would come back for the same
request after every resume, so it ends the link at once with RuntimeRefused.

gRPC loses the runtime's status when a write races the stream's end: the write fails with
INTERNAL "Internal error from Core" and the call's status becomes that, whatever the runtime
said. Such an end is ambiguous; the link resumes once and writes nothing after the Resume until
the runtime has answered or ``SETTLE_S`` passed, so a refusal comes back with its own status.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

import grpc
from dialtone.common.backoff import backoff_delay
from dialtone.common.errors import quote_prefix
from dialtone.common.grpc_validation import is_refusal
from dialtone.speech_gateway.metrics import RUNTIME_RECONNECTS, RUNTIME_REFUSALS
from dialtone.v1 import conversation_runtime_pb2 as rpb
from dialtone.v1 import conversation_runtime_pb2_grpc as rpb_grpc

log = logging.getLogger(__name__)

ActionHandler = Callable[[rpb.DialogAction], Awaitable[None]]

# Events written and kept for a replay after a break: far more than a call produces between two
# saves of its session (one save per event), small enough to re-send in one go.
REPLAYED_EVENTS = 32
# After an ambiguous end: how long a resumed stream waits for the runtime to refuse it before the
# replayed events follow the Resume.
SETTLE_S = 0.5
RECONNECT_INITIAL_S = 0.1
RECONNECT_MAX_S = 2.0
# The status grpc.aio gives a call whose write failed in the core (the stream had already ended).
_LOST_STATUS = (grpc.StatusCode.INTERNAL, "Internal error from Core")


class RuntimeUnavailable(Exception):
    """The runtime could not be reached (again) within the reconnect window."""


class RuntimeRefused(Exception):
    """The runtime refused this call's stream; resuming would be refused the same way."""

    def __init__(self, code: grpc.StatusCode, why: str) -> None:
        super().__init__(why)
        self.code = code


class RuntimeLink:
    def __init__(self, channel: grpc.aio.Channel, session_id: str, started: rpb.CallStarted | None,
                 on_action: ActionHandler, *, reconnect_s: float) -> None:
        self._stub = rpb_grpc.ConversationRuntimeStub(channel)
        self.session_id = session_id
        self._started = started  # None: the call is a resume of one already under way
        self._on_action = on_action
        self._reconnect_s = reconnect_s
        self._outbox: asyncio.Queue[rpb.SpeechEvent | None] = asyncio.Queue()
        self._retry: rpb.SpeechEvent | None = None
        self._written: collections.deque[rpb.SpeechEvent] = collections.deque(maxlen=REPLAYED_EVENTS)
        self.replayed = 0
        self._seq = 0
        self.last_written_seq = 0
        self.last_action_seq = 0
        self.connects = 0
        self._status_lost = False  # the last stream's end was masked by a failed write
        self._answered = False     # the current stream brought at least one action

    def send(self, **payload: object) -> int:
        """Queue one event (e.g. ``send(transcript=Transcript(...))``); returns its seq."""
        self._seq += 1
        self._outbox.put_nowait(rpb.SpeechEvent(session_id=self.session_id, seq=self._seq, **payload))
        return self._seq

    def close(self) -> None:
        """No more events: finish writing, then wait for the runtime to end the stream."""
        self._outbox.put_nowait(None)

    async def run(self) -> None:
        """Until the call's stream ends normally; raises RuntimeUnavailable if it cannot reconnect,
        RuntimeRefused (at once) if the runtime refused the stream."""
        loop = asyncio.get_running_loop()
        failures = 0   # breaks in a row that waited before resuming
        broken_since: float | None = None
        while True:
            call = self._stub.Converse()
            try:
                finished = await self._session(call)
            except asyncio.CancelledError:
                # the call's media stream ended abnormally: the runtime's stream must end too (it parks
                # the session for a resume), not stay open until the channel closes
                call.cancel()
                raise
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                code, details = await _ended_with(call, exc)
                if code == grpc.StatusCode.OK:
                    return  # a write raced the runtime's normal end of the conversation: it is over
                # the runtime's message may quote what it refused: a prefix is enough for a log line
                why = f"{code.name} {quote_prefix(details, 200)}"
                lost = (code, details) == _LOST_STATUS
                if self._answered:
                    broken_since, failures = None, 0  # this stream worked: a new break, a new window
                if is_refusal(code) or (lost and self._status_lost):
                    RUNTIME_REFUSALS.labels(code.name).inc()
                    log.warning("runtime refused the call's stream (%s); ending the call", why)
                    raise RuntimeRefused(code, why) from exc
                now = loop.time()
                broken_since = broken_since if broken_since is not None else now
                if now - broken_since >= self._reconnect_s:
                    RUNTIME_RECONNECTS.labels("gave_up").inc()
                    raise RuntimeUnavailable(f"runtime stream broken for {now - broken_since:.1f} s: {why}") from exc
                log.info("runtime stream broke (%s); reconnecting", why)
                call.cancel()
                self._status_lost = lost
                if not lost:
                    failures += 1
                    await asyncio.sleep(backoff_delay(failures, RECONNECT_INITIAL_S, RECONNECT_MAX_S))
                continue
            if finished:
                return

    def _first_message(self) -> rpb.SpeechEvent:
        if self.connects == 0 and self._started is not None:
            self._seq += 1
            self.last_written_seq = self._seq
            return rpb.SpeechEvent(session_id=self.session_id, seq=self._seq, call_started=self._started)
        return rpb.SpeechEvent(session_id=self.session_id, resume=rpb.Resume(
            last_event_seq=self.last_written_seq, last_action_seq=self.last_action_seq))

    async def _session(self, call: grpc.aio.StreamStreamCall) -> bool:
        """One stream. True when the call ended normally; raises AioRpcError when it broke."""
        first = self._first_message()
        self._answered = False
        reader = asyncio.create_task(self._read(call))
        try:
            return await self._write_all(call, first, reader)
        finally:
            if not reader.done():
                if call.done() and await call.code() == grpc.StatusCode.OK:
                    # the runtime ended the conversation while a write was under way: its last actions
                    # (a hangup waiting for its prompt's audio) still run, they are not lost with the stream
                    await reader
                else:
                    reader.cancel()
                    try:
                        await reader
                    except (asyncio.CancelledError, grpc.aio.AioRpcError):
                        pass

    async def _write_all(self, call: grpc.aio.StreamStreamCall, first: rpb.SpeechEvent,
                         reader: asyncio.Task[None]) -> bool:
        await call.write(first)
        if self.connects:
            RUNTIME_RECONNECTS.labels("resumed").inc()
            if self._status_lost:
                # nothing written while the runtime may be refusing the Resume, so its status is its own
                await asyncio.wait({reader}, timeout=SETTLE_S)
                if reader.done():
                    await reader
                    return True
            for event in list(self._written):
                await call.write(event)
                self.replayed += 1
        self.connects += 1
        while True:
            event = self._retry
            if event is None:
                getter = asyncio.ensure_future(self._outbox.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    await reader  # raises AioRpcError if the stream broke
                    return True   # the runtime ended the conversation
                event = getter.result()
            if event is None:
                await call.done_writing()
                await reader
                return True
            self._retry = event
            await call.write(event)
            self._retry = None
            self.last_written_seq = event.seq
            self._written.append(event)

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        async for action in call:
            if action.seq and action.seq <= self.last_action_seq:
                continue  # re-sent after a resume and already handled
            self._answered = True
            await self._on_action(action)
            # counted once handled: an action cut off by a break (a hangup waiting for its prompt's
            # audio) is re-sent by the runtime after the resume
            if action.seq:
                self.last_action_seq = action.seq


async def _ended_with(call: grpc.aio.StreamStreamCall, exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status a broken stream ended with."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code(), exc.details() or ""
    if call.done():  # InvalidStateError: a write raced the stream's end; its status says why
        return await call.code(), await call.details() or ""
    return grpc.StatusCode.UNAVAILABLE, "stream closed"

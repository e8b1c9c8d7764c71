"""The runtime's I/O shell around the FSM: per-call event queues, the store, timers, backend calls.

One ``CallLoop`` per stream applies the call's events strictly in order (one queue, one consumer),
saves the session after every transition and only then sends its actions. Timers of calls that
have a stream here are armed as a queue wait.

A call without a stream is *parked*: no timer fires and no backend is called for it while no
one could hear the result. A stream that closes without the call's end (no CallEnded, no
hangup: the client went away, its channel closed, a refusal) parks its session as it closes;
a session whose replica died before it could is found by every replica's poller (its timers
come due in the store, and no one holds its lease) and parked there. A resumed stream unparks
the call, and the timers that came due meanwhile fire then. A call that no stream resumes
within ``orphan_timeout_s`` (60 s: the speech gateway stops resuming after about 10 s) or by
its dialog's ``max_duration``, whichever comes first, ends as ``stream_lost``: the dialog's
``hangup`` transition runs with that reason (its ``call`` actions are made), and a stream that
resumes later gets ``Hangup(stream_lost)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from dialtone.common.errors import InvalidArgument, quote_prefix
from dialtone.common.grpc_validation import require_session_id
from dialtone.common.metrics import counter, gauge, histogram
from dialtone.conversation_runtime import convert
from dialtone.conversation_runtime.backend import BackendClient
from dialtone.conversation_runtime.config import ConversationRuntimeConfig
from dialtone.conversation_runtime.core import engine
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core import model as m
from dialtone.conversation_runtime.core.errors import DialogLoadError
from dialtone.conversation_runtime.core.session import Session
from dialtone.conversation_runtime.errors import StoreUnavailable
from dialtone.conversation_runtime.registry import DialogRegistry, UnknownDialog
from dialtone.conversation_runtime.store import SessionStore
from dialtone.v1 import conversation_runtime_pb2 as pb

log = logging.getLogger(__name__)

EVENTS = counter("runtime_events_total", "Dialog events applied, by kind", ["kind"])
ACTIONS = counter("runtime_actions_total", "Dialog actions issued, by kind", ["kind"])
ACTIVE = gauge("runtime_active_streams", "Call streams open on this replica")
EVENT_LATENCY = histogram("runtime_event_seconds", "Event in to actions out (FSM + store write)")
EXPRESSION_ERRORS = counter("runtime_expression_errors_total",
                            "Conditions that could not be computed on a call (taken as false)")
STORE_CONFLICTS = counter("runtime_store_conflicts_total",
                          "Saves refused because another replica had moved the session on")
TIMERS_FIRED = counter("runtime_timers_fired_total", "Timer firings, by where they fired", ["where"])
PREVIEWS = counter("runtime_reply_previews_total",
                   "Provisional transcripts previewed, by whether the dialog would say something", ["outcome"])
PARKED = counter("runtime_sessions_parked_total", "Calls parked: their stream closed without the call's end")
STREAM_LOST = counter("runtime_sessions_stream_lost_total", "Parked calls that ended because no stream resumed them")
MAX_CONFLICT_RETRIES = 3
MAX_PROMPT_OPENINGS = 32   # fixed prompt openings sent to the speech gateway when a call starts
PURGE_EVERY_S = 300.0
QUEUE_LIMIT = 256
SUPERSEDE_WAIT_S = 5.0
_END = object()         # the client closed its side of the stream
_SUPERSEDED = object()  # a newer stream of the same session arrived on this replica


class Runtime:
    def __init__(self, config: ConversationRuntimeConfig, store: SessionStore, registry: DialogRegistry,
                 backend: BackendClient, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.backend = backend
        self.clock = clock   # wall clock: deadlines in the store are compared across replicas
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.active: dict[str, CallLoop] = {}
        self.background: set[asyncio.Task[Any]] = set()   # work no caller awaits (referenced until done)

    def finish_calls(self, session_id: str, actions: list[ev.Action]) -> None:
        """Make the calls of a call's last transition (its hangup transition's): the call has ended, so
        no one waits for their answers, and neither does the stream's end or the poller."""
        for action in actions:
            if action.kind == "call":
                self.in_background(self.backend.invoke(session_id, action.key, action.data))

    def in_background(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def dialog_for(self, session: Session) -> m.Dialog:
        """The version the session started with (from the store if this replica never loaded it)."""
        dialog = self.registry.version(session.version)
        if dialog is not None:
            return dialog
        source = await self.store.get_dialog(session.version)
        if source is not None:
            return await asyncio.to_thread(self.registry.add_version, *source)
        log.warning("dialog %s version %s is unknown here; using the current version", session.dialog,
                    session.version)
        return self.registry.current(session.dialog)

    async def open(self, first: pb.SpeechEvent) -> CallLoop:
        """Start or resume the session named by a stream's first message."""
        require_session_id(first.session_id, "SpeechEvent")
        kind = first.WhichOneof("payload")
        now = self.clock()
        if kind == "call_started":
            call = convert.call_info(first.call_started)  # sizes checked before anything is stored
            if await self.store.load(first.session_id) is not None:
                raise InvalidArgument(f"session {first.session_id} already started; reconnect with resume")
            try:
                dialog = self.registry.route(call)
            except UnknownDialog as exc:
                raise InvalidArgument(f"CallStarted: {exc}") from exc
            source = self.registry.source_of(dialog.version)
            if source is not None:
                await self.store.put_dialog(dialog.version, *source)
            outcome = engine.start_traced(dialog, first.session_id, call, now)
            session = outcome.session
            session.event_seq = first.seq
            await self.store.save(session)
            await self.store.acquire_lease(session.session_id, self.owner, now, self.config.lease_ttl_s, force=True)
            log.info("call started: dialog %s version %s", dialog.name, dialog.version,
                     extra={"session_id": session.session_id})
            return CallLoop(self, session, dialog, outcome.actions, {},
                            openings=engine.fixed_prompt_openings(dialog, MAX_PROMPT_OPENINGS))
        if kind == "resume":
            previous = self.active.get(first.session_id)
            if previous is not None:  # the old stream must stop before the session is read
                previous.supersede()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(previous.finished.wait(), SUPERSEDE_WAIT_S)
            session = await self.store.load(first.session_id)
            if session is None:
                raise InvalidArgument(f"resume: session {first.session_id} is unknown")
            await self.store.acquire_lease(session.session_id, self.owner, now, self.config.lease_ttl_s, force=True)
            if session.parked_until:
                session = await self.unpark(session)
            dialog = await self.dialog_for(session)
            missed = engine.actions_after(session, first.resume.last_action_seq)
            log.info("call resumed at state %s; re-sending %d actions the stream missed", session.state,
                     len(missed), extra={"session_id": session.session_id})
            return CallLoop(self, session, dialog, missed, dict(session.pending_calls))
        raise InvalidArgument("SpeechEvent: a stream must begin with call_started or resume, "
                              f"got {kind or 'an empty event'}")

    async def unpark(self, session: Session) -> Session:
        """The session, unparked in the store: a stream carries the call again."""
        for _ in range(MAX_CONFLICT_RETRIES):
            unparked = engine.unpark(session)
            if await self.store.save(unparked, expected_step=session.step):
                return unparked
            stored = await self.store.load(session.session_id)
            if stored is None:
                raise StoreUnavailable(f"session {session.session_id} vanished from the store")
            if not stored.parked_until:
                return stored
            session = stored
        raise StoreUnavailable(f"session {session.session_id} keeps changing under this replica")

    async def apply(self, dialog: m.Dialog, session: Session, event: ev.Event, seq: int,
                    now: float) -> tuple[Session, list[ev.Action]]:
        """One transition: the FSM, then the store, then (by the caller) the actions.

        The save is a compare-and-set on the session's step: if another replica moved the
        session on meanwhile (a timer fired elsewhere, a takeover), the event is applied again
        to the stored session; nothing of the first attempt was sent, so nothing is sent twice.
        """
        started = time.perf_counter()
        for _ in range(MAX_CONFLICT_RETRIES):
            outcome = engine.handle_traced(dialog, session, event, now, seq)
            if outcome.session is session or await self.store.save(outcome.session, expected_step=session.step):
                break
            STORE_CONFLICTS.inc()
            stored = await self.store.load(session.session_id)
            if stored is None:
                raise StoreUnavailable(f"session {session.session_id} vanished from the store")
            session = stored
        else:
            raise StoreUnavailable(f"session {session.session_id} keeps changing under this replica")
        EVENTS.labels(type(event).__name__).inc()
        for error in outcome.errors:
            EXPRESSION_ERRORS.inc()
            log.warning("%s (taken as false)", error, extra={"session_id": session.session_id})
        for action in outcome.actions:
            ACTIONS.labels(action.kind).inc()
        EVENT_LATENCY.observe(time.perf_counter() - started)
        return outcome.session, outcome.actions

    # -- sessions without a stream ---------------------------------------------------------
    async def poll_timers(self) -> None:
        next_purge = self.clock()
        while True:
            await asyncio.sleep(self.config.timer_poll_s)
            try:
                await self.wake_due_sessions()
                if self.clock() >= next_purge:
                    next_purge = self.clock() + PURGE_EVERY_S
                    purged = await self.store.purge(self.clock() - self.config.store.retention_s)
                    if purged:
                        log.info("forgot %d sessions older than %.0f s", purged, self.config.store.retention_s)
            except (StoreUnavailable, LookupError, DialogLoadError) as exc:
                log.warning("timer poll failed: %s", exc)

    async def wake_due_sessions(self) -> int:
        """Park the due sessions no stream holds; end the parked ones whose time is up. Returns how many
        were parked or ended."""
        woken = 0
        now = self.clock()
        for session_id in await self.store.due(now, 64):
            if session_id in self.active:
                continue  # its stream's loop fires its timers
            if not await self.store.acquire_lease(session_id, self.owner, now, self.config.lease_ttl_s):
                continue  # a stream elsewhere holds it
            try:
                woken += await self._wake(session_id)
            finally:
                await self.store.release_lease(session_id, self.owner)
        return woken

    async def _wake(self, session_id: str) -> int:
        session = await self.store.load(session_id)
        if session is None:
            await self.store.drop(session_id)  # an index entry whose session expired
            return 0
        now = self.clock()
        if not session.parked_until:  # its timers came due, and its stream died with its replica
            if not await self.store.save(engine.park(session, now, self.config.orphan_timeout_s),
                                         expected_step=session.step):
                return 0  # a stream took the call back meanwhile
            PARKED.inc()
            log.info("call has no stream: parked; ends as stream_lost in %.0f s unless resumed",
                     self.config.orphan_timeout_s, extra={"session_id": session_id})
            return 1
        dialog = await self.dialog_for(session)
        outcome = engine.handle_traced(dialog, session, ev.Tick(), now)
        if outcome.session is session or not await self.store.save(outcome.session, expected_step=session.step):
            return 0  # not yet due, or a stream took the call back meanwhile
        STREAM_LOST.inc()
        log.info("no stream resumed the call: ended as stream_lost in state %s", session.state,
                 extra={"session_id": session_id})
        self.finish_calls(session_id, outcome.actions)
        return 1


class CallLoop:
    """One call's stream: an ordered queue of its events and the actions they produce."""

    def __init__(self, runtime: Runtime, session: Session, dialog: m.Dialog, initial: list[ev.Action],
                 pending: dict[str, dict[str, Any]], openings: list[str] | None = None) -> None:
        self.runtime = runtime
        self.openings = openings or []   # fixed prompt openings to send first (a new call)
        self.session = session
        self.dialog = dialog
        self.initial = initial
        self.pending = pending           # calls to (re-)invoke on resume; same keys, so the backend runs once
        # Bounded: a flood of events waits in gRPC's flow control, not in this process's memory.
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.superseded = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.renew_at = 0.0
        self.finished = asyncio.Event()
        self.lease_lost = False
        self.last_sent = min((a.seq for a in initial), default=session.action_seq + 1) - 1

    @property
    def session_id(self) -> str:
        return self.session.session_id

    async def run(self, messages: AsyncIterator[pb.SpeechEvent]) -> AsyncIterator[pb.DialogAction]:
        rt = self.runtime
        rt.active[self.session_id] = self
        ACTIVE.inc()
        reader = asyncio.create_task(self._read(messages))
        try:
            self.renew_at = rt.clock() + rt.config.lease_ttl_s / 3
            if self.openings:
                yield convert.prepare_reply(self.session_id, self.openings)
            for message in self._stream(self.initial):
                yield message
            for key, call in self.pending.items():
                self._invoke(key, call)
            while not self.session.ended:
                item = await self._next_item()
                if item is _END:
                    break
                if item is _SUPERSEDED or self.superseded:
                    log.info("a newer stream of this call took over; closing this one")
                    break
                if isinstance(item, InvalidArgument):
                    raise item
                now = rt.clock()
                if now >= self.renew_at:
                    if not await rt.store.acquire_lease(self.session_id, rt.owner, now, rt.config.lease_ttl_s):
                        log.warning("lost the session's lease to another replica; closing this stream")
                        self.lease_lost = True
                        break
                    self.renew_at = now + rt.config.lease_ttl_s / 3
                if self.session.parked_until:  # a poller parked it while this replica's lease lapsed
                    self.session = await rt.unpark(self.session)
                event, seq = item if item is not None else (ev.Tick(), 0)
                if isinstance(event, ev.ProvisionalSpeech):
                    try:
                        texts = engine.preview(self.dialog, self.session, event, now)
                    except Exception:  # noqa: BLE001 - a preview is only a head start; the call goes on
                        log.exception("previewing a provisional transcript failed")
                        texts = []
                    PREVIEWS.labels("say" if texts else "silent").inc()
                    if texts:
                        yield convert.prepare_reply(self.session_id, texts, seq)
                    continue
                if item is None:
                    TIMERS_FIRED.labels("stream").inc()
                self.session, actions = await rt.apply(self.dialog, self.session, event, seq, now)
                if self.session.ended:
                    rt.finish_calls(self.session_id, actions)  # this loop ends now, and cancels its tasks
                else:
                    for action in actions:
                        if action.kind == "call":
                            self._invoke(action.key, action.data)
                # Everything issued since what this stream last got: the event's actions, and any
                # a timer fired elsewhere issued meanwhile (seen when the save had to be redone).
                for message in self._stream(engine.actions_after(self.session, self.last_sent)):
                    yield message
        finally:
            reader.cancel()
            for task in self.tasks:
                task.cancel()
            if rt.active.get(self.session_id) is self:
                del rt.active[self.session_id]
            ACTIVE.dec()
            # Shielded in a task of its own: gRPC may cancel a stream whose client went away again
            # while it closes, and parking the call and releasing its lease must not be cut short.
            await asyncio.shield(rt.in_background(self._close([reader, *self.tasks])))

    async def _close(self, tasks: list[asyncio.Task[Any]]) -> None:
        rt = self.runtime
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.session_id not in rt.active:  # a newer stream here keeps the lease
                # With the store down the lease simply expires, and a poller parks the call.
                with contextlib.suppress(StoreUnavailable):
                    await self._park_if_abandoned()
                    await rt.store.release_lease(self.session_id, rt.owner)
        finally:
            self.finished.set()

    async def _park_if_abandoned(self) -> None:
        """The stream closed, and the call did not end: park it (see the module docstring)."""
        rt = self.runtime
        if self.session.ended or self.superseded or self.lease_lost:
            return
        now = rt.clock()
        # Only while this replica holds the lease: a resumed stream elsewhere may own the call already.
        if not await rt.store.acquire_lease(self.session_id, rt.owner, now, rt.config.lease_ttl_s):
            return
        if await rt.store.save(engine.park(self.session, now, rt.config.orphan_timeout_s),
                               expected_step=self.session.step):
            PARKED.inc()
            log.info("stream closed before the call ended: parked; ends as stream_lost in %.0f s unless resumed",
                     rt.config.orphan_timeout_s, extra={"session_id": self.session_id})

    def supersede(self) -> None:
        self.superseded = True  # seen at the loop's next turn even if the queue is full now
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_SUPERSEDED)

    def _stream(self, actions: list[ev.Action]) -> list[pb.DialogAction]:
        out = []
        for action in actions:
            self.last_sent = max(self.last_sent, action.seq)
            message = convert.to_message(self.session_id, action)
            if message is not None:
                out.append(message)
        return out

    async def _next_item(self) -> Any:
        """The next queued event; None when a timer (or the lease renewal) is due first."""
        rt = self.runtime
        wake = self.renew_at
        deadline = self.session.next_deadline()
        if deadline is not None:
            wake = min(wake, deadline)
        timeout = max(0.0, wake - rt.clock())
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def _read(self, messages: AsyncIterator[pb.SpeechEvent]) -> None:
        try:
            await self._read_events(messages)
        finally:
            task = asyncio.current_task()
            if task is None or not task.cancelling():  # cancelled: the loop is over and no one listens
                await self.queue.put(_END)

    async def _read_events(self, messages: AsyncIterator[pb.SpeechEvent]) -> None:
        async for message in messages:
            if message.session_id != self.session_id:
                await self.queue.put(InvalidArgument(
                    f"SpeechEvent seq {message.seq}: session_id {quote_prefix(message.session_id)} does not match "
                    f"the stream's session {self.session_id!r}"))
                return
            try:
                event = convert.to_event(message)
            except InvalidArgument as exc:
                await self.queue.put(exc)
                return
            if event is not None:
                await self.queue.put((event, message.seq))

    def _invoke(self, key: str, call: dict[str, Any]) -> None:
        async def invoke() -> None:
            result = await self.runtime.backend.invoke(self.session_id, key, call)
            await self.queue.put((result, 0))
        task = asyncio.create_task(invoke())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

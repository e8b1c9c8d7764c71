"""The one crossing between sippy's event loop (``ED2``, its own thread) and asyncio.

sippy is not asyncio: its dispatcher runs in a thread we start here, and its UA objects
must only be touched from that thread. Everything that goes sippy -> asyncio passes
through ``SippyBridge.to_asyncio`` (a queue drained by one ``loop.call_soon_threadsafe`` hop); everything that
goes asyncio -> sippy passes through ``SippyBridge.to_sippy`` (``ED2.callFromThread``).
Both wrap the callable so that an exception in it is logged and counted, never lost into
sippy's stdout dumper and never fatal to either loop.

The sippy thread does not run ``ED2.loop``: that loop wakes on a fixed clock (elperiodic) and serves
cross-thread calls only on its next tick, so a prompt hop needs a fast clock, and a fast clock burns
CPU while nothing happens (1 kHz cost 5 % of a core on an idle gateway). ``_run_dispatcher`` is the same
loop -- sippy's signals, then its timers, then the calls other threads queued -- but it sleeps on the
queue until the next timer is due, so a call from another thread wakes it at once and an idle gateway
does not wake at all. ``ED2.callFromThread`` is pointed at that queue (sippy's receive threads, ours
and its own code all call it).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from dialtone.common.metrics import counter
from sippy.Core.EventDispatcher import ED2
from sippy.Time.MonoTime import MonoTime

log = logging.getLogger(__name__)

CALLBACK_ERRORS = counter("media_sip_callback_errors_total",
                          "exceptions raised in a callback crossing the sippy/asyncio boundary", ["side"])

# The longest the sippy thread sleeps with no timer due: only a signal sippy registered itself waits this long.
_IDLE_WAIT_S = 1.0
_THREAD_WAKEUPS = [0]   # how often the sippy thread woke up; its tests read it
_THREAD_CALLS: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()


def _call_from_thread(thread_cb: Callable[..., Any], *cb_params: Any) -> None:
    """``ED2.callFromThread``, served by ``_run_dispatcher``."""
    _THREAD_CALLS.put((thread_cb, cb_params))


def _call_from_thread_sync(thread_cb: Callable[..., Any], *cb_params: Any) -> Any:
    """``ED2.callFromThreadSync``: the same, waiting for the result."""
    results: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()

    def run() -> None:
        try:
            results.put((thread_cb(*cb_params), None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            results.put((None, exc))

    _THREAD_CALLS.put((run, ()))
    result, exc = results.get()
    if exc is not None:
        raise exc
    return result


def _run_dispatcher() -> None:
    """sippy's ``ED2.loop`` without its clock (see module docstring); returns on ``ED2.breakLoop``."""
    ED2.endloop = False
    calls = _THREAD_CALLS
    while True:
        ED2.last_ts = MonoTime()
        if ED2.signals_pending:
            ED2.dispatchSignals()
        ED2.dispatchTimers()
        if ED2.endloop:
            break
        if ED2.twasted * 2 > len(ED2.tlisteners):   # as ED2.loop: drop cancelled timers past half the heap
            ED2.tlisteners = [timer for timer in ED2.tlisteners if timer.cb_func is not None]
            heapq.heapify(ED2.tlisteners)
            ED2.twasted = 0
        wait = _IDLE_WAIT_S
        if ED2.tlisteners:
            wait = min(wait, max(0.0, -ED2.tlisteners[0].etime.offsetFromNow()))
        try:
            thread_cb, cb_params = calls.get(timeout=wait) if wait > 0 else calls.get_nowait()
        except queue.Empty:
            continue
        finally:
            _THREAD_WAKEUPS[0] += 1
        while True:
            ED2.dispatchThreadCallback(thread_cb, cb_params)
            if ED2.endloop:
                ED2.endloop = False
                return
            try:
                thread_cb, cb_params = calls.get_nowait()
            except queue.Empty:
                break
    ED2.endloop = False


def _guarded(side: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - a library callback must never take a loop down
        CALLBACK_ERRORS.labels(side).inc()
        log.exception("callback %s raised on the %s side", getattr(fn, "__qualname__", fn), side)


class SippyBridge:
    """Runs sippy's dispatcher in a daemon thread and hops calls across in both directions."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._to_asyncio: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._drain_scheduled = False

    def start(self) -> None:
        if self._thread is not None:
            return
        ED2.callFromThread = _call_from_thread
        ED2.callFromThreadSync = _call_from_thread_sync
        self._thread = threading.Thread(target=self._run, name="sippy-ed2", daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    def _run(self) -> None:
        # ED2 is a process-wide singleton created at import; it checks the thread that
        # arms timers against this ident, so claim it for the thread that runs the loop.
        ED2.my_ident = threading.get_ident()
        self._started.set()
        try:
            _run_dispatcher()
        except BaseException:  # noqa: BLE001 - log why the SIP thread ended, whatever it was
            log.exception("sippy event loop ended with an exception")

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def in_sippy_thread(self) -> bool:
        return self._thread is not None and threading.get_ident() == self._thread.ident

    def to_sippy(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the sippy thread (from any thread)."""
        if self.in_sippy_thread():
            _guarded("sippy", fn, args)
            return
        _call_from_thread(_guarded, "sippy", fn, args)

    def to_asyncio(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the asyncio loop thread (from the sippy thread), in order.

        Calls are queued and one drain is scheduled for however many arrive before it runs: waking
        the loop (call_soon_threadsafe writes its self-pipe) cost a fifth of the sippy thread's time
        at 100 call setups a second when every crossing woke it."""
        self._to_asyncio.append((fn, args))
        if self._drain_scheduled:
            return
        self._drain_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain_to_asyncio)
        except RuntimeError:
            self._to_asyncio.clear()
            log.debug("asyncio loop closed; dropped %s", getattr(fn, "__qualname__", fn))

    def _drain_to_asyncio(self) -> None:
        self._drain_scheduled = False   # first: a call queued while we drain schedules another drain
        queued = self._to_asyncio
        while queued:
            fn, args = queued.popleft()
            _guarded("asyncio", fn, args)

    async def call_in_sippy(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the sippy thread and await its result (exceptions re-raised here)."""
        future: asyncio.Future[Any] = self._loop.create_future()

        def run() -> None:
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                self._loop.call_soon_threadsafe(_set_exception, future, exc)
            else:
                self._loop.call_soon_threadsafe(_set_result, future, result)

        self.to_sippy(run)
        return await future

    def stop(self) -> None:
        if self._thread is None:
            return
        _call_from_thread(ED2.breakLoop)
        self._thread.join(5.0)
        self._thread = None


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)

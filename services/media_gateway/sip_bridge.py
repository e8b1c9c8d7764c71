"""The one crossing between sippy's dispatcher (``ED2``) and asyncio.

sippy is not asyncio: its UA and transaction objects expect to be driven by ``ED2``, one thread
at a time, through its timers and ``ED2.callFromThread``. ``SippyBridge`` runs that dispatcher on
the asyncio loop's own thread instead of a thread of its own:

- ``ED2.callFromThread`` (sippy's code and our TCP/TLS selector thread call it) becomes a callback
  on the loop (``call_soon_threadsafe`` from another thread, ``call_soon`` on the loop);
- sippy's timers stay in ``ED2``'s heap; one loop timer is armed for the earliest of them after
  every piece of sippy work, and runs ``ED2.dispatchTimers`` when it is due;
- the UDP socket is read by the loop (``sip_transport.GuardedUdpServer``).

A SIP stack in its own thread cost more than its work: at 100 call setups a second the three
threads (the loop, sippy's, the socket reader) handed the GIL to one another some 90 times per call,
each a futex wake-up and a context switch. Everything that goes sippy -> asyncio passes through
``to_asyncio`` and everything asyncio -> sippy through ``to_sippy``; each runs later on the loop,
never inside the caller's frame (sippy's state machines are not re-entrant), and both wrap the
callable so that an exception in it is logged and counted, never lost into sippy's stdout dumper.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from dialtone.common.metrics import counter
from sippy.Core.EventDispatcher import ED2
from sippy.Time.MonoTime import MonoTime

log = logging.getLogger(__name__)

CALLBACK_ERRORS = counter("media_sip_callback_errors_total",
                          "exceptions raised in a callback crossing the sippy/asyncio boundary", ["side"])


# Started and not stopped, oldest first. ED2 is one per process: two stacks in one process (a test's
# phone beside a gateway) share it and its timers, on one loop; the latest started serves it.
_RUNNING: list[SippyBridge] = []


def _guarded(side: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - a library callback must never take a loop down
        CALLBACK_ERRORS.labels(side).inc()
        log.exception("callback %s raised on the %s side", getattr(fn, "__qualname__", fn), side)


class SippyBridge:
    """sippy's dispatcher on the asyncio loop (see module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = 0
        self._running = False
        self._in_sippy = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = math.inf
        self._to_asyncio: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._drain_scheduled = False
        self.timer_wakeups = 0   # how often sippy's timers woke the loop; the tests read it

    def start(self) -> None:
        """Take over ``ED2``; call on the loop's thread."""
        if self._running:
            return
        self._loop_thread = threading.get_ident()
        self._running = True
        _RUNNING.append(self)
        self._take_ed2()

    def _take_ed2(self) -> None:
        ED2.my_ident = self._loop_thread   # ED2 checks the thread that arms a timer against it
        ED2.callFromThread = self._call_from_thread
        ED2.callFromThreadSync = self._call_from_thread_sync
        ED2.endloop = False

    @property
    def thread(self) -> threading.Thread | None:
        """No thread of its own: sippy runs on the loop's (``critical_threads`` has none to watch here)."""
        return None

    def in_sippy_thread(self) -> bool:
        """Inside sippy's work (a datagram, a timer, a ``to_sippy`` call) right now."""
        return self._in_sippy and threading.get_ident() == self._loop_thread

    # --- into sippy --------------------------------------------------------------------------
    def _call_from_thread(self, thread_cb: Callable[..., Any], *cb_params: Any) -> None:
        """``ED2.callFromThread``: ``thread_cb(*cb_params)`` as sippy work on the loop, from any thread."""
        self._schedule(thread_cb, cb_params)

    def _call_from_thread_sync(self, thread_cb: Callable[..., Any], *cb_params: Any) -> Any:
        """``ED2.callFromThreadSync`` (sippy's UI helpers): from another thread, wait for the result."""
        if threading.get_ident() == self._loop_thread:
            return thread_cb(*cb_params)
        return asyncio.run_coroutine_threadsafe(self.call_in_sippy(thread_cb, *cb_params), self._loop).result()

    def _schedule(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            if threading.get_ident() == self._loop_thread:
                self._loop.call_soon(self._run_sippy, fn, args)
            else:
                self._loop.call_soon_threadsafe(self._run_sippy, fn, args)
        except RuntimeError:
            log.debug("asyncio loop closed; dropped %s", getattr(fn, "__qualname__", fn))

    def _run_sippy(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._in_sippy = True
        try:
            _guarded("sippy", fn, args)
        finally:
            self._in_sippy = False
        self._arm_timer()

    def to_sippy(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` as sippy work (from any thread): at once when already inside sippy's work
        (as on its own thread before), otherwise next on the loop."""
        if self.in_sippy_thread():
            _guarded("sippy", fn, args)
            return
        self._schedule(fn, args)

    async def call_in_sippy(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` as sippy work and await its result (exceptions re-raised here)."""
        future: asyncio.Future[Any] = self._loop.create_future()

        def run() -> None:
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

        self.to_sippy(run)
        return await future

    # --- sippy's timers ----------------------------------------------------------------------
    def _arm_timer(self) -> None:
        """One loop timer for the earliest live sippy timer (cancelled ones at the top are dropped)."""
        heap = ED2.tlisteners
        while heap and heap[0].cb_func is None:
            heapq.heappop(heap)
            ED2.twasted -= 1
        if not heap or not self._running:
            return
        due = heap[0].etime.monot   # CLOCK_MONOTONIC, the clock of loop.time()
        if due >= self._timer_due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._loop.call_at(due, self._fire_timers)

    def _fire_timers(self) -> None:
        self._timer, self._timer_due = None, math.inf
        self.timer_wakeups += 1
        self._in_sippy = True
        try:
            ED2.last_ts = MonoTime()
            ED2.dispatchTimers()   # sippy reports a callback's exception itself (stack's dump_exception)
            if ED2.twasted * 2 > len(ED2.tlisteners):   # as ED2.loop: drop cancelled timers past half the heap
                ED2.tlisteners = [timer for timer in ED2.tlisteners if timer.cb_func is not None]
                heapq.heapify(ED2.tlisteners)
                ED2.twasted = 0
        except Exception:  # noqa: BLE001 - a timer must not stop the next ones
            CALLBACK_ERRORS.labels("sippy").inc()
            log.exception("sippy timers raised")
        finally:
            self._in_sippy = False
        self._arm_timer()

    # --- out of sippy ------------------------------------------------------------------------
    def to_asyncio(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop after the sippy work in hand, in order."""
        self._to_asyncio.append((fn, args))
        if self._drain_scheduled:
            return
        self._drain_scheduled = True
        try:
            if threading.get_ident() == self._loop_thread:
                self._loop.call_soon(self._drain_to_asyncio)
            else:
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

    def stop(self) -> None:
        """The stack is gone: its sippy timers (retransmissions, session refreshes) go with it, so they
        never fire into a stack started later in this process (``ED2`` is one per process)."""
        if not self._running:
            return
        self._running = False
        _RUNNING.remove(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_due = None, math.inf
        if _RUNNING:   # another stack in this process (a test's phone beside a gateway) keeps ED2 and the timers
            _RUNNING[-1]._take_ed2()
            _RUNNING[-1]._arm_timer()
            return
        for timer in ED2.tlisteners:
            timer.cleanup()
        ED2.tlisteners = []
        ED2.twasted = 0

"""A bounded worker pool for blocking engine work, off the event loop.

N threads and N engine instances: each job borrows an instance for its duration,
so an engine is never used by two threads at once (whisper.cpp and piper keep
state on the instance). The native code releases the GIL, so threads give real
parallelism. Jobs beyond ``max_queue`` waiting are refused with PoolBusy, so one
flood cannot grow the queue without bound. Queue depth and wait time are metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

from dialtone.speech_gateway.metrics import POOL_QUEUE_DEPTH, POOL_REFUSED, POOL_WAIT

E = TypeVar("E")
T = TypeVar("T")

_DONE = object()


class PoolBusy(Exception):
    """The pool's queue is full; the job was not accepted."""


class EnginePool(Generic[E]):
    def __init__(self, name: str, engines: list[E], max_queue: int = 32) -> None:
        if not engines:
            raise ValueError("a pool needs at least one engine")
        self.name = name
        self.size = len(engines)
        self._free: queue.SimpleQueue[E] = queue.SimpleQueue()
        for engine in engines:
            self._free.put(engine)
        self._executor = concurrent.futures.ThreadPoolExecutor(len(engines), thread_name_prefix=f"{name}-worker")
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._submitted = 0   # accepted and not finished
        self._running = 0

    @property
    def queued(self) -> int:
        """Jobs accepted but not yet running."""
        with self._lock:
            return self._submitted - self._running

    @property
    def idle(self) -> bool:
        with self._lock:
            return self._submitted < self.size

    def _accept(self) -> float:
        with self._lock:
            if self._submitted >= self.size + self._max_queue:
                POOL_REFUSED.labels(self.name).inc()
                raise PoolBusy(f"{self.name} pool is full ({self._submitted} jobs)")
            self._submitted += 1
            POOL_QUEUE_DEPTH.labels(self.name).set(self._submitted - self._running)
        return time.perf_counter()

    def _begin(self, accepted: float) -> E:
        with self._lock:
            self._running += 1
            POOL_QUEUE_DEPTH.labels(self.name).set(self._submitted - self._running)
        POOL_WAIT.labels(self.name).observe(time.perf_counter() - accepted)
        return self._free.get_nowait()  # never empty: one engine per thread

    def _end(self, engine: E) -> None:
        self._free.put(engine)
        with self._lock:
            self._running -= 1
            self._submitted -= 1
            POOL_QUEUE_DEPTH.labels(self.name).set(self._submitted - self._running)

    async def run(self, job: Callable[[E], T]) -> T:
        """Run ``job(engine)`` on a worker; raises PoolBusy when the queue is full."""
        accepted = self._accept()

        def work() -> T:
            engine = self._begin(accepted)
            try:
                return job(engine)
            finally:
                self._end(engine)

        try:
            future = self._executor.submit(work)
        except BaseException:
            with self._lock:
                self._submitted -= 1
            raise
        return await asyncio.wrap_future(future)

    async def stream(self, job: Callable[[E], Iterator[T]]) -> AsyncIterator[T]:
        """Run a generator job on a worker; yield its items on the loop as each exists.
        Leaving the iteration early (barge-in) stops the job at its next item."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def post(item: object) -> None:
            loop.call_soon_threadsafe(items.put_nowait, item)

        def work(engine: E) -> None:
            if cancelled.is_set():   # left while the job waited for a worker (a reply dropped, a barge-in)
                post(_DONE)
                return
            try:
                for item in job(engine):
                    if cancelled.is_set():
                        break
                    post(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, re-raised there
                post(exc)
            finally:
                post(_DONE)

        runner = asyncio.ensure_future(self.run(work))

        def refused(future: asyncio.Future[None]) -> None:
            # The job never ran (PoolBusy): nothing else will wake the reader below.
            if not future.cancelled() and future.exception() is not None:
                items.put_nowait(future.exception())

        runner.add_done_callback(refused)
        try:
            while True:
                item = await items.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            # The worker finishes its current sentence, then stops; we do not wait for it.
            # (``refused`` retrieves a failed runner's exception, so none goes unobserved.)
            cancelled.set()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

"""The sippy thread's dispatcher (``sip_bridge``): sippy's timers and calls from other threads, served
without a clock, and the hops between it and asyncio."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from dialtone.media_gateway import sip_bridge
from dialtone.media_gateway.sip_bridge import SippyBridge
from sippy.Core.EventDispatcher import ED2
from sippy.Time.Timeout import Timeout


@pytest.fixture
async def bridge():
    bridge = SippyBridge(asyncio.get_running_loop())
    bridge.start()
    yield bridge
    bridge.stop()


async def test_sippy_timers_fire_in_deadline_order_and_a_cancelled_one_never(bridge: SippyBridge) -> None:
    fired: list[str] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def arm() -> None:
        Timeout(lambda: fired.append("late") or loop.call_soon_threadsafe(done.set), 0.15)
        Timeout(fired.append, 0.05, 1, "early")
        Timeout(fired.append, 0.10, 1, "cancelled").cancel()

    await bridge.call_in_sippy(arm)
    await asyncio.wait_for(done.wait(), 5)
    assert fired == ["early", "late"]


async def test_a_call_from_another_thread_runs_on_the_sippy_thread(bridge: SippyBridge) -> None:
    ran_on: list[bool] = []
    done = threading.Event()

    def receiver() -> None:   # what sippy's and our receive threads do with each datagram
        ED2.callFromThread(lambda: (ran_on.append(bridge.in_sippy_thread()), done.set()))

    threading.Thread(target=receiver).start()
    assert await asyncio.to_thread(done.wait, 5)
    assert ran_on == [True]


async def test_call_in_sippy_returns_the_result_and_raises_the_error(bridge: SippyBridge) -> None:
    assert await bridge.call_in_sippy(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        await bridge.call_in_sippy(lambda: 1 / 0)


async def test_an_idle_sippy_thread_does_not_wake(bridge: SippyBridge) -> None:
    await bridge.call_in_sippy(lambda: None)
    before = sip_bridge._THREAD_WAKEUPS[0]
    await asyncio.sleep(0.5)
    # sippy's own loop ticked 1,000 times a second here; with nothing due nothing should run.
    assert sip_bridge._THREAD_WAKEUPS[0] - before <= 1


async def test_stop_ends_the_thread_and_a_later_bridge_starts_again() -> None:
    first = SippyBridge(asyncio.get_running_loop())
    first.start()
    thread = first.thread
    first.stop()
    assert thread is not None and not thread.is_alive()
    second = SippyBridge(asyncio.get_running_loop())
    second.start()
    try:
        assert await second.call_in_sippy(time.monotonic) > 0
    finally:
        second.stop()

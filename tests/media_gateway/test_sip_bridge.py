"""sippy's dispatcher on the asyncio loop (``sip_bridge``): sippy's timers, calls from other threads,
and the hops between sippy's work and asyncio."""

from __future__ import annotations

import asyncio
import threading

import pytest
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


async def test_a_call_from_another_thread_runs_as_sippy_work_on_the_loop(bridge: SippyBridge) -> None:
    ran: list[tuple[bool, int]] = []
    done = threading.Event()

    def receiver() -> None:   # what our TCP/TLS selector thread does with each message
        ED2.callFromThread(lambda: (ran.append((bridge.in_sippy_thread(), threading.get_ident())), done.set()))

    threading.Thread(target=receiver).start()
    assert await asyncio.to_thread(done.wait, 5)
    assert ran == [(True, threading.get_ident())]


async def test_to_sippy_from_the_loop_runs_later_never_inside_the_caller(bridge: SippyBridge) -> None:
    order: list[str] = []
    bridge.to_sippy(order.append, "sippy")
    order.append("caller")
    await bridge.call_in_sippy(lambda: None)
    assert order == ["caller", "sippy"]
    assert not bridge.in_sippy_thread()


async def test_call_in_sippy_returns_the_result_and_raises_the_error(bridge: SippyBridge) -> None:
    assert await bridge.call_in_sippy(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        await bridge.call_in_sippy(lambda: 1 / 0)


async def test_an_idle_bridge_does_not_wake_the_loop(bridge: SippyBridge) -> None:
    def arm_and_cancel() -> None:
        Timeout(lambda: None, 0.05).cancel()

    await bridge.call_in_sippy(arm_and_cancel)
    before = bridge.timer_wakeups
    await asyncio.sleep(0.3)
    # sippy's own loop ticked 1,000 times a second here (we ran it so); with nothing due nothing runs.
    assert bridge.timer_wakeups - before <= 1


async def test_a_stopped_bridge_fires_no_more_timers_and_a_later_one_does() -> None:
    loop = asyncio.get_running_loop()
    first = SippyBridge(loop)
    first.start()
    fired: list[str] = []
    await first.call_in_sippy(lambda: Timeout(fired.append, 0.05, 1, "first"))
    first.stop()
    await asyncio.sleep(0.15)
    assert fired == []
    second = SippyBridge(loop)
    second.start()
    try:
        done = asyncio.Event()
        await second.call_in_sippy(lambda: Timeout(lambda: (fired.append("second"), done.set()), 0.01))
        await asyncio.wait_for(done.wait(), 5)
        assert fired == ["second"]
    finally:
        second.stop()


async def test_two_stacks_in_one_process_keep_their_timers_when_one_stops() -> None:
    loop = asyncio.get_running_loop()
    gateway, phone = SippyBridge(loop), SippyBridge(loop)
    gateway.start()
    phone.start()
    fired = asyncio.Event()
    try:
        await gateway.call_in_sippy(lambda: Timeout(fired.set, 0.1))
        phone.stop()   # the later one goes first: the gateway's retransmission timer must still fire
        await asyncio.wait_for(fired.wait(), 5)
    finally:
        phone.stop()
        gateway.stop()

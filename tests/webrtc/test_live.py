"""Per-call live events: history replay, ordering, bounds and the end of the stream."""

from __future__ import annotations

import asyncio

import pytest
from dialtone.media_gateway.webrtc.live import HISTORY, MAX_SUBSCRIBERS, SUBSCRIBER_QUEUE, LiveChannel


async def collect(channel: LiveChannel) -> list:
    return [event async for event in channel.subscribe()]


async def test_late_subscriber_gets_history_then_live_events_until_close():
    """Events published before subscribing are replayed first; close() ends the stream."""
    channel = LiveChannel()
    channel.publish("state", 5, state="connecting")
    task = asyncio.create_task(collect(channel))
    await asyncio.sleep(0)
    channel.publish("notice", 10, notice="say", text="hello")
    channel.close()
    events = await asyncio.wait_for(task, 2.0)
    assert [(e.seq, e.kind, e.t_ms, e.data) for e in events] == [
        (1, "state", 5, {"state": "connecting"}), (2, "notice", 10, {"notice": "say", "text": "hello"})]


async def test_subscribing_after_close_replays_and_ends():
    """A subscriber arriving after the call ended still gets the history, then the end."""
    channel = LiveChannel()
    channel.publish("ended", 99, reason="caller_hangup")
    channel.close()
    channel.publish("state", 100, state="ignored")
    assert [e.kind for e in await asyncio.wait_for(collect(channel), 2.0)] == ["ended"]


def test_sse_encoding():
    """An event is one SSE message: id, event name and a JSON data line."""
    channel = LiveChannel()
    channel.publish("dtmf", 7, digit="5")
    assert channel.history[0].to_sse() == (
        b'id: 1\nevent: dtmf\ndata: {"seq": 1, "kind": "dtmf", "t_ms": 7, "digit": "5"}\n\n')


async def test_history_and_slow_subscribers_are_bounded():
    """History keeps the newest HISTORY events; a subscriber that falls behind loses its oldest."""
    channel = LiveChannel()
    for i in range(HISTORY + 10):
        channel.publish("timing", i)
    assert len(channel.history) == HISTORY and channel.history[0].t_ms == 10
    stream = channel.subscribe()
    first = await anext(stream)
    for i in range(SUBSCRIBER_QUEUE * 2):
        channel.publish("timing", 1000 + i)
    channel.close()
    rest = [event async for event in stream]
    assert first.t_ms == 10
    assert len(rest) <= SUBSCRIBER_QUEUE and rest[-1].t_ms == 1000 + SUBSCRIBER_QUEUE * 2 - 1


async def test_subscribers_per_call_are_capped():
    """More than MAX_SUBSCRIBERS event streams on one call are refused."""
    channel = LiveChannel()
    streams = [channel.subscribe() for _ in range(MAX_SUBSCRIBERS)]
    channel.publish("state", 1)
    for stream in streams:
        await anext(stream)
    with pytest.raises(OverflowError, match="at most"):
        channel.subscribe()
    channel.close()
    for stream in streams:
        await stream.aclose()

"""Scale-out spreads calls: the speech gateway sends each call's runtime stream to the next replica."""

from __future__ import annotations

import asyncio

from tests.speech_gateway.standins import MediaClient, start_runtime


async def test_twenty_calls_spread_over_two_runtime_replicas(gateway):
    """runtime_address lists two replicas: the channel balances per call (round_robin), so each replica
    takes a fair share of 20 calls, where one shared HTTP/2 connection used to send all of them to one."""
    first = await start_runtime(lambda stream, event: [])
    second = await start_runtime(lambda stream, event: [])
    address = await gateway(f"{first[2]},{second[2]}")
    try:
        for index in range(20):
            media = MediaClient(address, f"balance-{index:02d}")
            await media.start()
            await media.silence(100)
            await media.end()
        await asyncio.sleep(0.5)
    finally:
        await first[0].stop(0)
        await second[0].stop(0)
    counts = sorted([len(first[1].streams), len(second[1].streams)])
    assert sum(counts) == 20
    assert counts[0] >= 7, f"calls per replica {counts}: not balanced per call"

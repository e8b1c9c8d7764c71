"""Scale-out spreads calls: the speech gateway sends each call's runtime stream to the next replica."""

from __future__ import annotations

import asyncio

from tests.helpers import ReplicaDns
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


async def test_a_runtime_replica_added_later_starts_taking_calls(gateway):
    """runtime_address is one dns:// name resolving to two replicas; a third joins the name while calls go
    on: the replicas age their connections out, the speech gateway re-resolves, the third takes calls."""
    loop = asyncio.get_running_loop()
    resolver = ReplicaDns(["127.0.0.1", "127.0.0.2"])
    transport, _ = await loop.create_datagram_endpoint(lambda: resolver, local_addr=("127.0.0.1", 0))
    ageing = [("grpc.max_connection_age_ms", 2000), ("grpc.max_connection_age_grace_ms", 86_400_000)]
    replicas = [await start_runtime(lambda stream, event: [], "127.0.0.1", 0, ageing)]
    port = int(replicas[0][2].rsplit(":", 1)[1])
    replicas += [await start_runtime(lambda stream, event: [], host, port, ageing)
                 for host in ("127.0.0.2", "127.0.0.3")]
    address = await gateway(f"dns://127.0.0.1:{transport.get_extra_info('sockname')[1]}/runtime.dialtone.test:{port}")
    third = replicas[2][1]

    async def calls(first: int, count: int) -> None:
        for index in range(first, first + count):
            media = MediaClient(address, f"later-{index:03d}")
            await media.start()
            await media.silence(100)
            await media.end()

    try:
        await calls(0, 6)
        await asyncio.sleep(0.3)
        assert len(third.streams) == 0 and sum(len(r[1].streams) for r in replicas) == 6
        resolver.addresses.append("127.0.0.3")
        added = loop.time()
        for batch in range(30):        # bounded: a minute at most
            await calls(6 + 6 * batch, 6)
            if len(third.streams) >= 3:
                break
            await asyncio.sleep(1.0)
        taken_after_s = loop.time() - added
        assert len(third.streams) >= 3 and taken_after_s < 60, (len(third.streams), taken_after_s)
    finally:
        for server, _, _ in replicas:
            await server.stop(0)
        transport.close()

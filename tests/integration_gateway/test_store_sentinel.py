"""The shared store (breakers, rate limits, dedup) on a Redis that survives a server's loss: behind
Sentinel (a real master, replica and Sentinel on loopback; the master is killed between updates and
the store carries on, on the promoted replica, with every update applied exactly once), and on a real
Redis Cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dialtone.common.redis_client import RedisHaConfig, RedisSentinelConfig
from dialtone.integration_gateway.store_redis import RedisStore

from tests.redis_ha import MASTER_NAME, redis_cluster, sentinel_set


def _count(state: dict | None) -> tuple[dict, int]:
    value = (state or {}).get("n", 0) + 1
    return {"n": value}, value


async def test_updates_carry_on_across_a_master_failover(tmp_path: Path) -> None:
    with sentinel_set(tmp_path) as redis_set:
        ha = RedisHaConfig(sentinel=RedisSentinelConfig(addresses=[redis_set.sentinel_address],
                                                        master_name=MASTER_NAME))
        store = RedisStore(redis_set.url, "t:", ha)
        try:
            seen = [await store.transact("counter", _count, 600.0) for _ in range(10)]
            redis_set.wait_replica_in_sync()
            redis_set.kill_master()
            seen += [await store.transact("counter", _count, 600.0) for _ in range(10)]
            assert seen == list(range(1, 21))
            assert await store.get("counter") == {"n": 20}
            assert redis_set.master_address()[1] == redis_set.replica_port
        finally:
            await store.close()


async def test_updates_are_atomic_on_a_redis_cluster(tmp_path: Path) -> None:
    """On a real Redis Cluster, 40 concurrent updates from two clients all land, none twice."""
    with redis_cluster(tmp_path) as url:
        stores = [RedisStore(url, "t:", RedisHaConfig(cluster=True)) for _ in range(2)]
        try:
            seen = await asyncio.gather(*(stores[i % 2].transact("counter", _count, 600.0) for i in range(40)))
            assert sorted(seen) == list(range(1, 41))
            assert await stores[0].get("counter") == {"n": 40}
        finally:
            for store in stores:
                await store.close()

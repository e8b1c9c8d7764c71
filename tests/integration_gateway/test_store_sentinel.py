"""The shared store (breakers, rate limits, dedup) behind Redis Sentinel: a real master, replica and
Sentinel on loopback; the master is killed between updates and the store carries on, on the promoted
replica, with every update applied exactly once."""

from __future__ import annotations

from pathlib import Path

from dialtone.common.redis_client import RedisHaConfig, RedisSentinelConfig
from dialtone.integration_gateway.store_redis import RedisStore

from tests.redis_ha import MASTER_NAME, sentinel_set


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

"""The shared store on a cluster: each update is a Redis WATCH/MULTI transaction,
retried when another replica changed the key in between (optimistic locking), so
the pure update functions of ``core/`` run unchanged and atomically."""

from __future__ import annotations

import json
import logging

from dialtone.common.redis_client import RedisHaConfig, connect
from dialtone.integration_gateway.errors import StoreUnavailable
from dialtone.integration_gateway.store import Delete, T, Update
from redis.exceptions import RedisError, WatchError

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 100


class RedisStore:
    def __init__(self, url: str, key_prefix: str, ha: RedisHaConfig | None = None) -> None:
        # Each update touches one key (WATCH/MULTI on it), so Cluster needs no hash tags here.
        self._redis = connect(url, ha, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._prefix = key_prefix

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise StoreUnavailable(f"redis store unreachable: {exc}") from exc

    async def transact(self, key: str, fn: Update[T], ttl_s: float) -> T:
        full_key = self._prefix + key
        try:
            for _ in range(MAX_CONFLICT_RETRIES):
                async with self._redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(full_key)
                        raw = await pipe.get(full_key)
                        new, result = fn(json.loads(raw) if raw else None)
                        if new is None:
                            await pipe.unwatch()
                            return result
                        pipe.multi()
                        if isinstance(new, Delete):
                            pipe.delete(full_key)
                        else:
                            pipe.set(full_key, json.dumps(new, separators=(",", ":")),
                                     px=max(1, int(ttl_s * 1000)))
                        await pipe.execute()
                        return result
                    except WatchError:
                        continue
        except RedisError as exc:
            raise StoreUnavailable(f"redis store: {exc}") from exc
        raise StoreUnavailable(f"redis store: key {key!r} kept changing under {MAX_CONFLICT_RETRIES} updates")

    async def get(self, key: str) -> dict | None:
        try:
            raw = await self._redis.get(self._prefix + key)
        except RedisError as exc:
            raise StoreUnavailable(f"redis store: {exc}") from exc
        return json.loads(raw) if raw else None

    async def close(self) -> None:
        await self._redis.aclose()

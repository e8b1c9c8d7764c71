"""The cluster store: Redis. Sessions are JSON strings, due timers a sorted set, leases keys with
a TTL set and renewed atomically by small Lua scripts (only the holder may renew or release)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dialtone.common.redis_client import RedisHaConfig, connect
from dialtone.conversation_runtime.core.session import Session
from dialtone.conversation_runtime.errors import StoreUnavailable
from redis.exceptions import RedisError

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_PREFIX = "dialtone:runtime:"
# With Redis Cluster every key shares one hash tag, so each script's keys (a session and the timers
# set) are in one slot; the price is that the runtime's state lives on one shard (it is small).
_CLUSTER_PREFIX = "{dialtone:runtime}:"

# KEYS[1] lease key; ARGV: owner, ttl ms, force
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] or ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS[1] session, KEYS[2] timers; ARGV: data, expected step ('' = none), ttl s, deadline ('' = none), id
_SAVE = """
if ARGV[2] ~= '' then
  local current = redis.call('GET', KEYS[1])
  if current == false or tostring(cjson.decode(current)['step']) ~= ARGV[2] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[5]) else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _mapped(method: F) -> F:
    """Redis client errors become StoreUnavailable, once, here."""
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"session store (redis): {exc}") from exc
    return wrapper  # type: ignore[return-value]


class RedisStore:
    def __init__(self, url: str, retention_s: float = 86400.0, ha: RedisHaConfig | None = None) -> None:
        self._redis = connect(url, ha, decode_responses=True)
        prefix = _CLUSTER_PREFIX if ha is not None and ha.cluster else _PREFIX
        self._session, self._lease, self._dialog = prefix + "session:", prefix + "lease:", prefix + "dialog:"
        self._timers = prefix + "timers"
        self._ttl_s = max(1, int(retention_s))  # Redis expires sessions itself
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._save = self._redis.register_script(_SAVE)

    @_mapped
    async def load(self, session_id: str) -> Session | None:
        data = await self._redis.get(self._session + session_id)
        return Session.from_json(data) if data else None

    @_mapped
    async def save(self, session: Session, expected_step: int | None = None) -> bool:
        deadline = session.wake_at()
        result = await self._save(
            keys=[self._session + session.session_id, self._timers],
            args=[session.to_json(), "" if expected_step is None else str(expected_step), self._ttl_s,
                  "" if deadline is None else repr(deadline), session.session_id])
        return int(result) == 1

    @_mapped
    async def due(self, now: float, limit: int) -> list[str]:
        return list(await self._redis.zrangebyscore(self._timers, "-inf", now, start=0, num=limit))

    @_mapped
    async def acquire_lease(self, session_id: str, owner: str, now: float, ttl: float,
                            force: bool = False) -> bool:
        # Redis expires the lease itself (its own clock), so `now` is not needed here.
        result = await self._acquire(keys=[self._lease + session_id],
                                     args=[owner, max(1, int(ttl * 1000)), "1" if force else "0"])
        return int(result) == 1

    @_mapped
    async def release_lease(self, session_id: str, owner: str) -> None:
        await self._release(keys=[self._lease + session_id], args=[owner])

    @_mapped
    async def drop(self, session_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._session + session_id)
            pipe.zrem(self._timers, session_id)
            await pipe.execute()

    async def purge(self, before: float) -> int:
        return 0  # sessions carry a TTL; a due-timer entry of an expired session is dropped on sight

    @_mapped
    async def put_dialog(self, version: str, file: str, text: str) -> None:
        await self._redis.hsetnx(self._dialog + version, "source", text)
        await self._redis.hsetnx(self._dialog + version, "file", file)

    @_mapped
    async def get_dialog(self, version: str) -> tuple[str, str] | None:
        entry = await self._redis.hgetall(self._dialog + version)
        return (entry["file"], entry["source"]) if entry.get("source") else None

    async def close(self) -> None:
        await self._redis.aclose()

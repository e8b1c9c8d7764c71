"""One way for every service to reach the Redis that holds its shared state: a single server (its URL),
a master that Redis Sentinel watches and fails over, or a Redis Cluster.

The URL always carries the credentials, the database and TLS (``redis://:password@host:6379/0``,
``rediss://...``). With Sentinel, its host and port are not used: the master's address is asked of
the Sentinels on every new connection, so after a failover clients reconnect to the promoted replica.
Commands that fail on a broken connection (the master died, or was demoted and answers READONLY) are
retried with backoff for about ``failover_s``, long enough for Sentinel to promote a replica, so a
failover delays calls instead of failing them.

With Cluster, every command and script must keep its keys in one hash slot: the stores give their
keys a common hash tag (``{...}``) in that mode.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis
from dialtone.common.config import ConfigError
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError


@dataclasses.dataclass
class RedisSentinelConfig:
    """Sentinel-managed Redis; empty ``addresses``: not used."""

    addresses: list[str] = dataclasses.field(default_factory=list)   # host:port of each Sentinel
    master_name: str = "mymaster"
    # The Sentinels' own password (requirepass in sentinel.conf), when they have one; the master's is
    # in the URL. Set it through the environment (..._SENTINEL__PASSWORD), not in a file in git.
    password: str = ""


@dataclasses.dataclass
class RedisHaConfig:
    """How a store reaches Redis beyond one server: Sentinel, or Cluster (not both)."""

    sentinel: RedisSentinelConfig = dataclasses.field(default_factory=RedisSentinelConfig)
    cluster: bool = False
    # With sentinel or cluster: how long commands are retried across a broken connection (a failover).
    failover_s: float = 10.0


class _MasterConnection(SentinelManagedConnection):
    """A connection that, reconnecting after a failure, asks the Sentinels where the master is now:
    redis-py's send path reconnects to the address it had (the dead master) until its retries run out."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect()
        await super().send_packed_command(command, check_health)


class _MasterSslConnection(_MasterConnection, SSLConnection):
    pass


def _sentinel_address(text: str, where: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: {text[:60]!r} is not host:port")
    return host.strip("[]"), int(port)


def _retry(failover_s: float) -> Retry:
    # 0.1, 0.2, 0.4, 0.8, then 1 s apart: about failover_s in all.
    attempts = 4 + max(1, int(failover_s - 1.5))
    return Retry(ExponentialBackoff(cap=1.0, base=0.1), attempts)


def connect(url: str, ha: RedisHaConfig | None = None, where: str = "store", **options: Any) -> Any:
    """A redis.asyncio client (``redis.Redis`` or ``RedisCluster``) for ``url`` as ``ha`` says;
    ``options`` (decode_responses, socket timeouts) apply to every connection."""
    ha = ha or RedisHaConfig()
    if ha.sentinel.addresses and ha.cluster:
        raise ConfigError(f"{where}: sentinel.addresses and cluster: choose one")
    if not ha.sentinel.addresses and not ha.cluster:
        # One server: no failover to wait for, so a dead Redis is reported as soon as redis-py gives up.
        return redis.Redis.from_url(url, **options)
    retry_errors = [RedisConnectionError, RedisTimeoutError, ReadOnlyError, ConnectionResetError]
    options = {"retry": _retry(ha.failover_s), "retry_on_error": retry_errors, **options}
    if ha.cluster:
        return RedisCluster.from_url(url, **options)
    addresses = [_sentinel_address(a, f"{where}.sentinel.addresses") for a in ha.sentinel.addresses]
    parts = urlsplit(url)
    if not parts.path.lstrip("/").isdigit() and parts.path not in ("", "/"):
        raise ConfigError(f"{where}.url: the database must be a number (redis://[:password@]host/0)")
    connection_class = _MasterSslConnection if parts.scheme == "rediss" else _MasterConnection
    master: dict[str, Any] = {"username": parts.username or None, "password": parts.password or None,
                              "db": int(parts.path.lstrip("/") or 0), "connection_class": connection_class, **options}
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if ha.sentinel.password:
        sentinel_options["password"] = ha.sentinel.password
    sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_options, **master)
    return sentinel.master_for(ha.sentinel.master_name, redis_class=redis.Redis)

"""The session store behind Redis Sentinel: a real master, replica and Sentinel on loopback; the master
is killed while calls are in flight, Sentinel promotes the replica, and the runtime carries on with
every session (nothing lost, no backend call made twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dialtone.common.config import ConfigError
from dialtone.common.redis_client import RedisHaConfig, RedisSentinelConfig, connect

from tests.conversation_runtime.support import Stream, call_started, kinds, start_gateway, transcript
from tests.redis_ha import MASTER_NAME, sentinel_set

PREFIX = "DIALTONE_CONVERSATION_RUNTIME__"
CALLS = ("s1", "s2", "s3")


async def test_calls_in_flight_survive_a_master_failover(tmp_path: Path, start_service) -> None:  # noqa: ANN001
    """Three calls are mid-dialog when the master is killed; each then finishes its booking on the
    promoted replica, with one backend request per call and the action sequence unbroken."""
    server, gateway, address = await start_gateway()
    try:
        with sentinel_set(tmp_path / "redis") as redis_set:
            env = {PREFIX + "INTEGRATION_ADDRESS": address, PREFIX + "STORE__KIND": "redis",
                   PREFIX + "STORE__URL": redis_set.url,
                   PREFIX + "STORE__SENTINEL__ADDRESSES": f"[{redis_set.sentinel_address}]",
                   PREFIX + "STORE__SENTINEL__MASTER_NAME": MASTER_NAME}
            runtime = start_service("conversation-runtime", env=env)
            streams = {call: Stream(runtime.address) for call in CALLS}
            for call, stream in streams.items():
                await stream.send(call_started(call, dialog="appointment_booking"))
                assert kinds(await stream.read(2)) == ["state_changed", "say"]
                await stream.send(transcript(call, 2, "Tuesday"))
                assert (await stream.read(2))[1].say.text.startswith("At what time on Tuesday, ")

            redis_set.wait_replica_in_sync()
            redis_set.kill_master()
            # The calls go on at once: their saves wait out the failover (retried on new connections).
            for call, stream in streams.items():
                await stream.send(transcript(call, 3, "10 am"))
            for call, stream in streams.items():
                actions = await stream.read(2)
                assert [a.seq for a in actions] == [5, 6], call
                said = actions[1].say.text
                assert said.startswith("Shall I book Tuesday, ") and "at ten a.m." in said
            redis_set.wait_failover()
            for call, stream in streams.items():
                await stream.send(transcript(call, 4, "yes"))
                actions = await stream.read_until("say")
                assert "confirmation code is A, B, one, two." in actions[-1].say.text, call
                await stream.close()
            assert sorted((r.service, r.idempotency_key) for r in gateway.requests) == \
                [("appointments", f"{call}:4:1") for call in CALLS]
            assert redis_set.master_address()[1] == redis_set.replica_port
    finally:
        await server.stop(0)


@pytest.mark.parametrize(("ha", "message"), [
    (RedisHaConfig(sentinel=RedisSentinelConfig(addresses=["10.0.0.1:26379"]), cluster=True), "choose one"),
    (RedisHaConfig(sentinel=RedisSentinelConfig(addresses=["sentinel-without-port"])), "is not host:port"),
])
def test_inconsistent_redis_settings_are_refused(ha: RedisHaConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        connect("redis://127.0.0.1:6379/0", ha)


def test_sentinel_mode_takes_credentials_and_database_from_the_url() -> None:
    """Under Sentinel the URL's password and db reach the master's connections; its host does not."""
    client = connect("redis://:s3cret@ignored.example:1/4",
                     RedisHaConfig(sentinel=RedisSentinelConfig(addresses=["127.0.0.1:26379"])))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"]) == ("s3cret", 4)
    assert "host" not in kwargs
    asyncio.run(client.aclose())

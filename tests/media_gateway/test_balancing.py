"""Scale-out spreads calls: the media gateway sends each call's speech stream to the next replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dialtone.common.grpc_channel import balanced_target

from tests.helpers import ReplicaDns
from tests.media_gateway.support import gateway_config, run_sipp, start_gateway, start_speech


async def test_twenty_calls_spread_over_two_speech_replicas(tmp_path: Path) -> None:
    """speech_gateway_address lists two replicas: each call's stream goes to the next one (round_robin
    on one channel), so each takes a fair share of 20 sipp calls."""
    first_server, first, first_address = await start_speech()
    second_server, second, second_address = await start_speech()
    app = await start_gateway(gateway_config(f"{first_address},{second_address}"))
    try:
        result = await run_sipp("short_call", app.sip_port, tmp_path, calls=20)
        assert result.returncode == 0, result.errors + result.stdout
    finally:
        await app.close()
        await first_server.stop(0)
        await second_server.stop(0)
    counts = sorted([len(first.streams), len(second.streams)])
    assert sum(counts) == 20
    assert counts[0] >= 7, f"calls per replica {counts}: not balanced per call"


def test_balanced_targets() -> None:
    """IP replicas become one ipv4:/ipv6: target; one name stays as given; names in a list are refused."""
    assert balanced_target("127.0.0.1:7002,127.0.0.2:7002") == "ipv4:127.0.0.1:7002,127.0.0.2:7002"
    assert balanced_target("[::1]:7002,[::2]:7002") == "ipv6:[::1]:7002,[::2]:7002"
    assert balanced_target("dns:///speech-headless:7002") == "dns:///speech-headless:7002"
    with pytest.raises(ValueError, match="dns:///"):
        balanced_target("speech-a:7002,speech-b:7002")


async def test_a_replica_added_later_starts_taking_calls(tmp_path: Path) -> None:
    """speech_gateway_address is one dns:// name (a headless Service) resolving to two replicas; a third
    is added to the name while calls go on. The replicas age their connections out (GOAWAY after
    max_connection_age), the gateway's channel re-resolves, and the third takes its share of new calls."""
    loop = asyncio.get_running_loop()
    resolver = ReplicaDns(["127.0.0.1", "127.0.0.2"])
    transport, _ = await loop.create_datagram_endpoint(lambda: resolver, local_addr=("127.0.0.1", 0))
    ageing = [("grpc.max_connection_age_ms", 2000), ("grpc.max_connection_age_grace_ms", 86_400_000)]
    replicas = [await start_speech("127.0.0.1", 0, ageing)]
    port = int(replicas[0][2].rsplit(":", 1)[1])
    replicas += [await start_speech(host, port, ageing) for host in ("127.0.0.2", "127.0.0.3")]
    name = f"dns://127.0.0.1:{transport.get_extra_info('sockname')[1]}/speech.dialtone.test:{port}"
    app = await start_gateway(gateway_config(name))
    third = replicas[2][1]
    try:
        result = await run_sipp("short_call", app.sip_port, tmp_path, calls=6)
        assert result.returncode == 0, result.errors + result.stdout
        assert len(third.streams) == 0 and sum(len(r[1].streams) for r in replicas) == 6
        resolver.addresses.append("127.0.0.3")
        added = loop.time()
        for _ in range(30):         # batches of calls, bounded: a minute at most
            result = await run_sipp("short_call", app.sip_port, tmp_path, calls=6)
            assert result.returncode == 0, result.errors + result.stdout
            if len(third.streams) >= 3:
                break
            await asyncio.sleep(1.0)
        taken_after_s = loop.time() - added
        print(f"the added replica took {len(third.streams)} calls within {taken_after_s:.1f} s")
        assert len(third.streams) >= 3 and taken_after_s < 60, (len(third.streams), taken_after_s)
    finally:
        await app.close()
        for server, _, _ in replicas:
            await server.stop(0)
        transport.close()

"""Scale-out spreads calls: the media gateway sends each call's speech stream to the next replica."""

from __future__ import annotations

from pathlib import Path

import pytest
from dialtone.common.grpc_channel import balanced_target

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

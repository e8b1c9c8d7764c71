"""The softphone inside the real media gateway process (`python -m dialtone media-gateway`).

What a browser call does there (listed and hung up by both control APIs, its goodbye heard whole
before the dialog's hangup, drain) is told with the SIP call's in tests/media_gateway/test_call_stories.py."""

from __future__ import annotations

import asyncio

from tests.helpers import free_port

PREFIX = "DIALTONE_MEDIA_GATEWAY__"


def gateway_env(speech_address: str, webrtc_port: int, **extra: str) -> dict[str, str]:
    return {PREFIX + "WEBRTC__ENABLED": "true", PREFIX + "WEBRTC__PORT": str(webrtc_port),
            PREFIX + "SPEECH_GATEWAY_ADDRESS": speech_address, PREFIX + "SIP__PORT": "0",
            PREFIX + "WEBRTC__ICE_HOST_ADDRESSES": '["127.0.0.1"]', PREFIX + "LOG__FORMAT": "json", **extra}


async def test_exposed_softphone_without_key_refuses_to_start(start_service, standin):
    """webrtc.host beyond loopback with no access key: the process exits and says why."""
    env = gateway_env(standin[1], free_port(), **{PREFIX + "WEBRTC__HOST": "0.0.0.0"})
    gateway = await asyncio.to_thread(start_service, "media-gateway", env, None, False)
    code = await asyncio.to_thread(gateway.proc.wait, 30)
    assert code != 0
    assert "webrtc.access_key" in gateway.log_text()

"""The softphone inside the real media gateway process (`python -m dialtone media-gateway`)."""

from __future__ import annotations

import asyncio

import grpc
import httpx
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc

from tests.helpers import free_port
from tests.webrtc.peers import BrowserLikePeer, wait_until

PREFIX = "DIALTONE_MEDIA_GATEWAY__"


def gateway_env(speech_address: str, webrtc_port: int, **extra: str) -> dict[str, str]:
    return {PREFIX + "WEBRTC__ENABLED": "true", PREFIX + "WEBRTC__PORT": str(webrtc_port),
            PREFIX + "SPEECH_GATEWAY_ADDRESS": speech_address, PREFIX + "SIP__PORT": "0",
            PREFIX + "WEBRTC__ICE_HOST_ADDRESSES": '["127.0.0.1"]', PREFIX + "LOG__FORMAT": "json", **extra}


async def test_browser_call_is_listed_and_hung_up_by_the_control_api(start_service, standin):
    """A browser call shows in ListCalls as CHANNEL_WEBRTC; HangupCall ends it with CallEnd upstream."""
    servicer, address = standin
    port = free_port()
    gateway = await asyncio.to_thread(start_service, "media-gateway", gateway_env(address, port))
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20.0) as client:
        assert "softphone.js" in (await client.get("/")).text
        response = await client.post("/api/offer", json={"sdp": await peer.offer(), "dialog": "order_status"})
        assert response.status_code == 200, response.text
        session_id = response.json()["session_id"]
    await peer.accept(response.json()["sdp"])
    await wait_until(lambda: bool(servicer.starts), what="CallStart from the gateway process")
    await wait_until(lambda: servicer.loud_frames >= 10, timeout=15.0, what="audio from the gateway process")
    async with grpc.aio.insecure_channel(gateway.address) as channel:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        calls = (await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls
        assert [(c.session_id, c.call.channel, c.call.dialog, c.codec) for c in calls] == [
            (session_id, common_pb2.CHANNEL_WEBRTC, "order_status", "opus")]
        assert (await stub.HangupCall(pb.HangupCallRequest(session_id=session_id), timeout=5)).found is True
        await wait_until(lambda: servicer.call_ends == ["operator_hangup"], what="CallEnd(operator_hangup)")
        assert list((await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls) == []
    await peer.close()


async def test_exposed_softphone_without_key_refuses_to_start(start_service, standin):
    """webrtc.host beyond loopback with no access key: the process exits and says why."""
    env = gateway_env(standin[1], free_port(), **{PREFIX + "WEBRTC__HOST": "0.0.0.0"})
    gateway = await asyncio.to_thread(start_service, "media-gateway", env, None, False)
    code = await asyncio.to_thread(gateway.proc.wait, 30)
    assert code != 0
    assert "webrtc.access_key" in gateway.log_text()

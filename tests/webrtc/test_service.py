"""The softphone inside the real media gateway process (`python -m dialtone media-gateway`)."""

from __future__ import annotations

import asyncio

import grpc
import httpx
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc
from dialtone.v1 import speech_gateway_pb2 as spb

from tests.helpers import free_port
from tests.webrtc.peers import BrowserLikePeer, tone_pcm, wait_until

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


async def _browser_call(start_service, standin) -> tuple[object, BrowserLikePeer, str]:
    servicer, address = standin
    port = free_port()
    gateway = await asyncio.to_thread(start_service, "media-gateway", gateway_env(address, port))
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20.0) as client:
        response = await client.post("/api/offer", json={"sdp": await peer.offer(), "dialog": "order_status"})
        assert response.status_code == 200, response.text
    await peer.accept(response.json()["sdp"])
    await wait_until(lambda: servicer.loud_frames >= 10, timeout=15.0, what="audio from the gateway process")
    return gateway, peer, response.json()["session_id"]


async def test_the_http_control_api_lists_and_hangs_up_a_browser_call(start_service, standin):
    """One registry: GET /v1/calls shows the browser call (channel webrtc, state active) and
    DELETE /v1/calls/{id} ends it with CallEnd(operator_hangup), as for a SIP call."""
    servicer, _ = standin
    gateway, peer, session_id = await _browser_call(start_service, standin)
    http_port = next(e["http_port"] for e in gateway.log_events() if e.get("event") == "control_http_listening")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10.0) as control:
        listed = (await control.get("/v1/calls")).json()["calls"]
        assert [(c["session_id"], c["channel"], c["state"], c["dialog"]) for c in listed] == [
            (session_id, "webrtc", "active", "order_status")]
        assert (await control.delete(f"/v1/calls/{session_id}")).json() == {"found": True}
        await wait_until(lambda: servicer.call_ends == ["operator_hangup"], what="CallEnd(operator_hangup)")
        assert (await control.get("/v1/calls")).json()["calls"] == []
    await peer.close()


async def test_a_browser_call_hears_its_goodbye_before_the_dialog_hangs_up(start_service, standin):
    """A dialog's goodbye then Hangup: the browser call holds the hangup until the goodbye played whole
    (the same rule as a SIP call's, now one code path), then ends with CallEnd(dialog_hangup)."""
    servicer, _ = standin
    _gateway, peer, session_id = await _browser_call(start_service, standin)
    goodbye = tone_pcm(660, 1200, amplitude=0.5)
    for offset in range(0, len(goodbye), 3200):
        servicer.send(session_id, play_audio=spb.PlayAudio(utterance_id="goodbye", pcm=goodbye[offset:offset + 3200],
                                                           sample_rate=16000,
                                                           last=offset + 3200 >= len(goodbye)))
    servicer.send(session_id, hangup=common_pb2.Hangup(reason="dialog_hangup"))
    await wait_until(lambda: servicer.call_ends == ["dialog_hangup"], timeout=20.0, what="CallEnd(dialog_hangup)")
    finished = {p.utterance_id: p for p in servicer.playback_finished}
    assert "goodbye" in finished, servicer.playback_finished
    assert not finished["goodbye"].interrupted
    assert finished["goodbye"].played_ms == finished["goodbye"].total_ms == 1200
    await peer.close()

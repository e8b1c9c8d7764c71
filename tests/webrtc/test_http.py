"""The softphone HTTP server on a loopback port, with a real aiortc peer and the stand-in speech gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from dialtone.v1 import common_pb2

from tests.webrtc.conftest import make_server
from tests.webrtc.peers import BrowserLikePeer, wait_until

CHROMIUM_OFFER = (Path(__file__).parent / "fixtures" / "chromium_offer.sdp").read_bytes().decode()


async def read_events(client: httpx.AsyncClient, session_id: str, until: str, limit: int = 400) -> list[dict]:
    """Server-sent events of a call, parsed, up to and including the first of kind ``until``."""
    events: list[dict] = []
    async with client.stream("GET", "/api/events", params={"session_id": session_id}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["kind"] == until or len(events) >= limit:
                    break
    return events


async def test_page_and_config_are_served(softphone):
    """GET / is the softphone page; its script and the dialog list are served too."""
    server, base = softphone
    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/")
        assert page.status_code == 200 and 'id="keypad"' in page.text and "softphone.js" in page.text
        script = await client.get("/static/softphone.js")
        assert script.status_code == 200 and "createDataChannel" in script.text
        assert (await client.get("/static/__init__.py")).status_code == 404
        assert (await client.get("/static/..%2fleg.py")).status_code == 404
        config = await client.get("/api/config")
        assert config.json() == {"dialogs": ["order_status", "support"], "ice_servers": []}


@pytest.mark.parametrize("body, message", [
    ({"sdp": "garbage", "dialog": "order_status"}, "must start with 'v=0'"),
    ({"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}, "no audio m-line"),
    ({"sdp": CHROMIUM_OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 iSAC/16000")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 G729/8000")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:8 GSM/8000")},
     "no common audio codec"),
    ({"dialog": "order_status"}, "'sdp' must be a non-empty string"),
    ({"sdp": CHROMIUM_OFFER, "dialog": "../etc/passwd"}, "'dialog' must be a dialog name"),
])
async def test_bad_offers_get_400_and_leave_nothing(softphone, standin, body, message):
    """Unusable offers are answered 400 with the reason; no call and no speech stream is left behind."""
    server, base = softphone
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/offer", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert server.calls == {}
    assert standin[0].starts == []


async def test_malformed_requests_get_clear_errors(softphone):
    """Non-JSON bodies, bad session ids and unknown sessions get 400/404 with a message."""
    server, base = softphone
    async with httpx.AsyncClient(base_url=base) as client:
        not_json = await client.post("/api/offer", content=b"{nope")
        assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
        bad_id = await client.post("/api/hangup", json={"session_id": "x y"})
        assert bad_id.status_code == 400 and "session_id" in bad_id.json()["error"]
        unknown = await client.get("/api/events", params={"session_id": "0" * 32})
        assert unknown.status_code == 404
        missing = await client.post("/api/hangup", json={"session_id": "0" * 32})
        assert missing.json() == {"found": False}
        too_big = await client.post("/api/offer", content=b"{" + b" " * 200_000 + b"}")
        assert too_big.status_code == 413


async def test_access_key_guards_page_and_api(standin):
    """With an access key, the page and the API refuse requests without it (401) and accept it as ?key= or header."""
    server = make_server(standin[1], access_key="s3cret")
    port = await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/")).status_code == 401
            denied = await client.post("/api/offer", json={"sdp": CHROMIUM_OFFER}, params={"key": "wrong"})
            assert denied.status_code == 401 and "access key" in denied.json()["error"]
            assert (await client.get("/", params={"key": "s3cret"})).status_code == 200
            assert (await client.get("/api/config", headers={"X-Dialtone-Key": "s3cret"})).status_code == 200
            assert (await client.get("/static/softphone.css")).status_code == 200  # public asset, no call data
    finally:
        await server.close()


def test_binding_beyond_loopback_needs_a_key(standin):
    """Refused at construction: 0.0.0.0 without an access key."""
    with pytest.raises(ValueError, match="access_key"):
        make_server(standin[1], host="0.0.0.0")


async def test_call_through_http_reaches_the_speech_gateway(softphone, standin):
    """A peer's offer is answered; CallStart says WEBRTC; audio, DTMF, notices and hangup flow both ways."""
    server, base = softphone
    servicer, _ = standin
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=base, timeout=20.0) as client:
        response = await client.post("/api/offer", json={"sdp": await peer.offer(), "dialog": "order_status"})
        assert response.status_code == 200, response.text
        answer = response.json()
        session_id = answer["session_id"]
        await peer.accept(answer["sdp"])
        await wait_until(lambda: bool(servicer.starts), what="CallStart")
        info = servicer.starts[0].call
        assert (info.channel, info.dialog, info.call_id) == (common_pb2.CHANNEL_WEBRTC, "order_status", session_id)

        await wait_until(lambda: servicer.loud_frames >= 25, timeout=15.0, what="25 loud frames upstream")
        await wait_until(lambda: any(level > -20.0 for level in peer.levels), what="the greeting at the peer")
        await wait_until(lambda: peer.channel.readyState == "open", what="keypad channel")
        peer.channel.send('{"digit": "0"}')
        await wait_until(lambda: bool(servicer.dtmf), what="DTMF upstream")
        assert (servicer.dtmf[0].digit, servicer.dtmf[0].source) == ("0", common_pb2.DTMF_SOURCE_WEBRTC)

        servicer.send(session_id, transfer=common_pb2.Transfer(target_uri="sip:agent@example.org"))
        await wait_until(lambda: bool(servicer.transfer_results), what="a transfer result")
        assert servicer.transfer_results[0].ok is False

        hung_up = await client.post("/api/hangup", json={"session_id": session_id})
        assert hung_up.json() == {"found": True}
        events = await asyncio.wait_for(read_events(client, session_id, until="ended"), 10.0)
    await peer.close()
    await wait_until(lambda: servicer.call_ends == ["caller_hangup"], what="CallEnd upstream")
    await wait_until(lambda: servicer.streams_closed == 1, what="the speech stream to close")
    assert server.calls == {}
    kinds = {(e["kind"], e.get("notice") or e.get("name") or e.get("state")) for e in events}
    assert {("notice", "transcript.final"), ("notice", "say"), ("timing", "connected_ms"), ("dtmf", None),
            ("state", "connected")} <= kinds
    assert events[-1]["kind"] == "ended" and events[-1]["reason"] == "caller_hangup"
    assert any(e["kind"] == "playback" and e["utterance_id"] == "greeting" for e in events)


async def test_dialog_hangup_ends_the_call(softphone, standin):
    """A Hangup from the speech side ends the browser call and is announced on the event stream."""
    server, base = softphone
    servicer, _ = standin
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=base, timeout=20.0) as client:
        answer = (await client.post("/api/offer", json={"sdp": await peer.offer()})).json()
        await peer.accept(answer["sdp"])
        await wait_until(lambda: bool(servicer.starts), what="CallStart")
        servicer.send(answer["session_id"], hangup=common_pb2.Hangup(reason="goodbye"))
        events = await asyncio.wait_for(read_events(client, answer["session_id"], until="ended"), 10.0)
    await peer.close()
    assert [e["reason"] for e in events if e["kind"] in ("hangup", "ended")] == ["goodbye", "dialog_hangup"]
    await wait_until(lambda: servicer.call_ends == ["dialog_hangup"], what="CallEnd upstream")
    assert server.calls == {}


async def test_stop_playback_from_the_speech_side_interrupts(softphone, standin):
    """StopPlayback (barge-in) interrupts the greeting; PlaybackFinished says interrupted with the ms played."""
    server, base = softphone
    servicer, _ = standin
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=base, timeout=20.0) as client:
        answer = (await client.post("/api/offer", json={"sdp": await peer.offer()})).json()
        await peer.accept(answer["sdp"])
        await wait_until(lambda: bool(servicer.playback_started), what="greeting started")
        servicer.send(answer["session_id"], stop_playback=common_pb2.StopPlayback(reason="barge_in"))
        await wait_until(lambda: bool(servicer.playback_finished), what="greeting finished")
        finished = servicer.playback_finished[0]
        assert finished.interrupted and 0 < finished.played_ms < finished.total_ms
        await client.post("/api/hangup", json={"session_id": answer["session_id"]})
    await peer.close()
    await wait_until(lambda: server.calls == {}, what="the call to be gone")


async def test_server_close_hangs_up_calls(standin):
    """Shutting the softphone down ends its calls with CallEnd(shutdown)."""
    servicer, address = standin
    server = make_server(address)
    port = await server.start()
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20.0) as client:
        answer = (await client.post("/api/offer", json={"sdp": await peer.offer()})).json()
    await peer.accept(answer["sdp"])
    await wait_until(lambda: bool(servicer.starts), what="CallStart")
    await server.close()
    await peer.close()
    await wait_until(lambda: servicer.call_ends == ["shutdown"], what="CallEnd(shutdown)")
    assert server.calls == {}


async def test_browser_that_never_connects_is_given_up(standin):
    """A peer that takes the answer but never completes ICE ends with CallEnd(connect_timeout)."""
    servicer, address = standin
    server = make_server(address, connect_timeout_s=1.0)
    port = await server.start()
    peer = BrowserLikePeer()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20.0) as client:
            answer = (await client.post("/api/offer", json={"sdp": await peer.offer()})).json()
            await peer.close()  # gone before ICE could start
            events = await asyncio.wait_for(read_events(client, answer["session_id"], until="ended"), 10.0)
        assert events[-1]["reason"] == "connect_timeout"
        await wait_until(lambda: servicer.call_ends == ["connect_timeout"], what="CallEnd(connect_timeout)")
        assert server.calls == {}
    finally:
        await server.close()


async def test_draining_refuses_new_calls_and_waits_for_the_rest(softphone, standin):
    """While draining, new offers get 503; wait_idle() returns once the call in hand has ended."""
    server, base = softphone
    peer = BrowserLikePeer()
    async with httpx.AsyncClient(base_url=base, timeout=20.0) as client:
        answer = (await client.post("/api/offer", json={"sdp": await peer.offer()})).json()
        await peer.accept(answer["sdp"])
        server.draining = True
        refused = await client.post("/api/offer", json={"sdp": CHROMIUM_OFFER})
        assert refused.status_code == 503 and "draining" in refused.json()["error"]
        idle = asyncio.ensure_future(server.wait_idle())
        await asyncio.sleep(0.2)
        assert not idle.done()
        await client.post("/api/hangup", json={"session_id": answer["session_id"]})
        await asyncio.wait_for(idle, 10.0)
    await peer.close()
    assert server.calls == {}

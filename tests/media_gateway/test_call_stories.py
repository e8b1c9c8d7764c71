"""The same call stories over both transports: a SIP call (the project's telephone, sippy + RTP)
and a browser call (headless Chromium on the softphone page), through one real media gateway
process (`python -m dialtone media-gateway`) whose speech side is the scripted stand-in of
``stories.py``. One ``Call`` model serves both: each story is written once and must hold for each.

Stories: the greeting is heard whole; caller speech reaches the speech side as 16 kHz frames and
is recognized; keys arrive as DTMF; speech over the greeting stops it (barge-in); a dialog's
goodbye is heard whole before its hangup; both control APIs (gRPC and HTTP) list and hang up the
call; a draining gateway refuses new calls and keeps the one in hand.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from dialtone.caller.phone import Phone, free_sip_port
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc
from playwright.async_api import Browser, async_playwright

from tests.helpers import ServiceProcess, env_prefix, free_port
from tests.media_gateway.stories import (
    GREETING_MS,
    LONG_GREETING_MS,
    STORY_DIALOGS,
    TRANSCRIPT,
    BrowserCaller,
    DialRefused,
    ScriptedSpeechSide,
    SessionRecord,
    SipCaller,
    StoryCaller,
    start_scripted_speech_side,
    wait_until,
)
from tests.webrtc.conftest import CHROMIUM

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
TRANSPORTS = pytest.mark.parametrize("transport", ["sip", "webrtc"])
PREFIX = env_prefix("media-gateway")
GOODBYE_MS = 1200
HEARD_WHOLE = 0.85     # of a prompt's length: what the caller must hear of a prompt played whole


class Gateway:
    """A media gateway process with SIP and the softphone on loopback, speech at the stand-in."""

    def __init__(self, workdir: Path, speech_address: str) -> None:
        self.sip_port, self.webrtc_port = free_sip_port("127.0.0.1"), free_port()
        routes = {name: name for name in STORY_DIALOGS}
        self.process = ServiceProcess.start("media-gateway", workdir, env={
            PREFIX + "SPEECH_GATEWAY_ADDRESS": speech_address, PREFIX + "SIP__HOST": "127.0.0.1",
            PREFIX + "SIP__PORT": str(self.sip_port), PREFIX + "ROUTING__BY_CALLEE": json.dumps(routes),
            PREFIX + "WEBRTC__ENABLED": "true", PREFIX + "WEBRTC__PORT": str(self.webrtc_port),
            PREFIX + "WEBRTC__DIALOGS": json.dumps(list(STORY_DIALOGS)),
            PREFIX + "WEBRTC__ICE_HOST_ADDRESSES": '["127.0.0.1"]', PREFIX + "LOG__FORMAT": "json"})

    def wait_serving(self) -> None:
        self.process.wait_serving(60.0)

    @property
    def http_port(self) -> int:
        return next(e["http_port"] for e in self.process.log_events() if e.get("event") == "control_http_listening")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def speech_side() -> AsyncIterator[tuple[ScriptedSpeechSide, str]]:
    servicer, server, address = await start_scripted_speech_side()
    yield servicer, address
    await server.stop(0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(speech_side, tmp_path_factory) -> AsyncIterator[Gateway]:
    started = Gateway(tmp_path_factory.mktemp("stories"), speech_side[1])
    await asyncio.to_thread(started.wait_serving)
    yield started
    started.process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def phone() -> AsyncIterator[Phone]:
    """One telephone for the module: sippy's dispatcher is one per process."""
    started = Phone()
    await started.start()
    yield started
    await started.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection"])
        try:
            yield launched
        finally:
            await launched.close()


def caller_for(transport: str, gateway: Gateway, phone: Phone, browser: Browser) -> StoryCaller:
    if transport == "sip":
        return SipCaller(phone, f"127.0.0.1:{gateway.sip_port}")
    return BrowserCaller(browser, f"http://127.0.0.1:{gateway.webrtc_port}/")


@pytest_asyncio.fixture(loop_scope="module")
async def story(transport, gateway, phone, browser, speech_side) -> AsyncIterator[tuple[StoryCaller,
                                                                                      ScriptedSpeechSide]]:
    caller = caller_for(transport, gateway, phone, browser)
    yield caller, speech_side[0]
    await caller.close()


async def dial(caller: StoryCaller, side: ScriptedSpeechSide, dialog: str = "stories") -> SessionRecord:
    known = len(side.sessions)
    await caller.dial(dialog)
    return await side.next_session(known)


async def greeted(record: SessionRecord) -> None:
    await wait_until(lambda: "greeting" in record.finished, 20.0, "the greeting to finish")


@TRANSPORTS
async def test_the_greeting_is_heard_whole(story):
    caller, side = story
    since = await caller.now()
    record = await dial(caller, side)
    assert (record.call.channel, record.call.dialog) == (caller.channel, "stories")
    await greeted(record)
    finished = record.finished["greeting"]
    assert not finished.interrupted and finished.played_ms == finished.total_ms == GREETING_MS, finished
    await asyncio.sleep(0.3)     # the jitter buffer's last packets
    heard = await caller.heard_ms(since)
    assert GREETING_MS * HEARD_WHOLE <= heard <= GREETING_MS + 300, heard
    await caller.hang_up()
    await wait_until(lambda: record.call_end == "caller_hangup", 10.0, "CallEnd(caller_hangup)")


@TRANSPORTS
async def test_caller_speech_goes_up_as_16_khz_frames_and_is_recognized(story):
    caller, side = story
    record = await dial(caller, side)
    await greeted(record)
    assert not record.recognized
    await caller.speak(1000)
    await wait_until(lambda: record.recognized, 10.0, "the caller's speech to be recognized")
    assert record.frame_sizes == {640}, record.frame_sizes    # 20 ms of 16-bit 16 kHz, whatever the codec
    if isinstance(caller, BrowserCaller):   # the softphone's live panel shows what was recognized
        await caller.page.wait_for_selector(f"#caller li:has-text('{TRANSCRIPT}')", timeout=10_000)
    await caller.hang_up()
    await wait_until(lambda: record.stream_closed, 10.0, "the speech stream to close")


@TRANSPORTS
async def test_keys_arrive_as_dtmf(story):
    caller, side = story
    record = await dial(caller, side)
    for digit in "5#":
        await caller.press(digit)
    try:
        await wait_until(lambda: len(record.dtmf) == 2, 10.0, "two DTMF digits")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got {[(d.digit, d.source) for d in record.dtmf]}") from None
    assert [(d.digit, d.source) for d in record.dtmf] == [("5", caller.dtmf_source), ("#", caller.dtmf_source)]
    await caller.hang_up()


@TRANSPORTS
async def test_speech_over_the_greeting_stops_it(story):
    caller, side = story
    since = await caller.now()
    record = await dial(caller, side, "barge_in")
    await wait_until(lambda: "greeting" in record.started, 10.0, "the greeting to start")
    await caller.speak(800)
    await wait_until(lambda: "greeting" in record.finished, 10.0, "the greeting to stop")
    assert record.barged_in
    stopped = record.finished["greeting"]
    assert stopped.interrupted and stopped.played_ms < stopped.total_ms == LONG_GREETING_MS, stopped
    await asyncio.sleep(0.5)
    heard = await caller.heard_ms(since)
    assert 0 < heard < LONG_GREETING_MS * HEARD_WHOLE, heard
    await caller.hang_up()


@TRANSPORTS
async def test_the_goodbye_is_heard_whole_before_the_dialog_hangs_up(story):
    caller, side = story
    record = await dial(caller, side)
    await greeted(record)
    await asyncio.sleep(0.3)
    since = await caller.now()
    side.play(record, "goodbye", GOODBYE_MS, freq_hz=660)
    side.send(record, hangup=common_pb2.Hangup(reason="dialog_hangup"))   # right behind the audio, as a dialog does
    await caller.wait_ended(20.0)
    heard = await caller.heard_ms(since)
    assert heard >= GOODBYE_MS * HEARD_WHOLE, heard
    await wait_until(lambda: record.call_end == "dialog_hangup", 10.0, "CallEnd(dialog_hangup)")
    finished = record.finished["goodbye"]
    assert not finished.interrupted and finished.played_ms == finished.total_ms == GOODBYE_MS, finished


@TRANSPORTS
@pytest.mark.parametrize("api", ["grpc", "http"])
async def test_both_control_apis_list_the_call_and_one_hangs_it_up(story, gateway, api):
    caller, side = story
    record = await dial(caller, side)
    channel_name = "sip" if caller.channel == common_pb2.CHANNEL_SIP else "webrtc"
    async with grpc.aio.insecure_channel(gateway.process.address) as channel, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=10.0) as http:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        listed = (await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls
        assert [c.call.channel for c in listed if c.session_id == record.session_id] == [caller.channel]
        over_http = (await http.get("/v1/calls")).json()["calls"]
        assert [(c["channel"], c["state"]) for c in over_http if c["session_id"] == record.session_id] == [
            (channel_name, "active")]
        if api == "grpc":
            assert (await stub.HangupCall(pb.HangupCallRequest(session_id=record.session_id), timeout=5)).found
        else:
            assert (await http.delete(f"/v1/calls/{record.session_id}")).json() == {"found": True}
        await caller.wait_ended(15.0)
        await wait_until(lambda: record.call_end == "operator_hangup", 10.0, "CallEnd(operator_hangup)")
        for _ in range(50):    # the call leaves the registry once its media is closed, just after CallEnd
            listed = (await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls
            over_http = (await http.get("/v1/calls")).json()["calls"]
            if record.session_id not in {c.session_id for c in listed} | {c["session_id"] for c in over_http}:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{record.session_id} still listed: {listed}, {over_http}")


@TRANSPORTS
async def test_a_draining_gateway_refuses_new_calls_and_keeps_the_one_in_hand(
        transport, speech_side, phone, browser, tmp_path):
    side = speech_side[0]
    own = Gateway(tmp_path, speech_side[1])
    await asyncio.to_thread(own.wait_serving)
    caller, newcomer = (caller_for(transport, own, phone, browser) for _ in range(2))
    try:
        record = await dial(caller, side)
        await greeted(record)
        own.process.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        with pytest.raises(DialRefused) as refused:
            await newcomer.dial("stories")
        assert refused.value.reason == ("refused_503" if transport == "sip" else
                                        "the media gateway is draining: try another replica")
        since = await caller.now()
        side.play(record, "still-here", GREETING_MS)       # the call in hand still hears its dialog
        await wait_until(lambda: "still-here" in record.finished, 10.0, "the prompt during the drain")
        await asyncio.sleep(0.3)
        assert await caller.heard_ms(since) >= GREETING_MS * HEARD_WHOLE
        assert own.process.proc.poll() is None, "the gateway left before its call ended"
        await caller.hang_up()
        assert await asyncio.to_thread(own.process.proc.wait, 20) == 0
        assert record.call_end == "caller_hangup"
    finally:
        await caller.close()
        await newcomer.close()
        own.process.stop()


"""A real headless Chromium (Debian's, driven by Playwright) calls through the softphone page.

The browser's microphone is a WAV of a spoken order number (espeak-ng, made at test time by
the ``browser`` fixture in conftest); the speech side is the recording stand-in.
The screenshot lands in artifacts/webrtc-call.png.
"""

from __future__ import annotations

import asyncio

from dialtone.v1 import common_pb2
from playwright.async_api import Browser, Page

from tests.webrtc.conftest import ARTIFACTS, make_server
from tests.webrtc.peers import wait_until


async def selected_pair(page: Page) -> tuple[str, str]:
    """(local, remote) address of the ICE candidate pair the browser uses."""
    local, remote = await page.evaluate("""async () => {
        const stats = [...(await window.softphone.pc.getStats()).values()];
        const transport = stats.find(s => s.type === "transport");
        const pair = stats.find(s => s.id === transport.selectedCandidatePairId);
        const address = (id) => { const c = stats.find(s => s.id === id); return c.address || c.ip; };
        return [address(pair.localCandidateId), address(pair.remoteCandidateId)];
    }""")
    return local, remote


async def inbound_audio(page: Page) -> dict | None:
    return await page.evaluate("window.softphone.inboundAudioStats()")


async def test_browser_call_end_to_end(browser: Browser, softphone, standin):
    """Page loads, Call connects, greeting is heard, speech goes up, panel updates, keypad is DTMF, Hang up ends it."""
    server, base = softphone
    servicer, _ = standin
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await page.goto(base + "/")
    await page.wait_for_selector("#dialogs option[value='order_status']", state="attached")
    assert await page.input_value("#dialog") == "order_status"

    await page.click("#call")
    await page.wait_for_selector("#state[data-state='connected']", timeout=15_000)
    await wait_until(lambda: bool(servicer.starts), what="CallStart at the speech side")
    session_id = await page.evaluate("window.softphone.sessionId")
    call_info = servicer.starts[0].call
    assert (call_info.channel, call_info.dialog, call_info.call_id) == (
        common_pb2.CHANNEL_WEBRTC, "order_status", session_id)
    assert "HeadlessChrome" in next(h.value for h in call_info.headers if h.name == "User-Agent")
    assert await page.evaluate("window.softphone.pc.connectionState") == "connected"
    assert await page.evaluate(
        "window.softphone.pc.getStats().then(r => [...r.values()].some(s => s.type === 'transport' "
        "&& s.dtlsState === 'connected'))")
    # The gateway offers only 127.0.0.1 (webrtc.ice_host_addresses), so media stays on this machine;
    # Chromium picks its own local socket (it may be the interface address, talking to 127.0.0.1).
    assert (await selected_pair(page))[1] == "127.0.0.1"

    # The greeting reaches the browser: RTP packets in, and a non-silent level in getStats.
    levels = []
    for _ in range(400):  # up to 20 s on a loaded machine
        stats = await inbound_audio(page)
        if stats:
            levels.append(stats["audioLevel"])
            if stats["packetsReceived"] > 50 and stats["audioLevel"] > 0.05:
                break
        await asyncio.sleep(0.05)
    assert stats is not None and stats["packetsReceived"] > 50, stats
    assert max(levels) > 0.05 and stats["totalAudioEnergy"] > 0, (levels, stats)

    # The browser's (fake) microphone reaches the speech side as non-silent 16 kHz frames.
    await wait_until(lambda: servicer.loud_frames >= 25, timeout=15.0, what="caller speech upstream")

    # The panel shows the transcript, what the dialog said, and its state.
    await page.wait_for_selector("#caller li:has-text('4 5 6 7')", timeout=10_000)
    await page.wait_for_selector("#dialog-said li:has-text('Welcome to Acme')")
    await page.wait_for_function("document.getElementById('dialog-state').textContent === 'lookup'")
    await page.wait_for_selector("#timings tr[data-name='connected_ms']")

    # A keypad press arrives as DTMF and moves the dialog.
    await page.click("#keypad button[data-digit='0']")
    await wait_until(lambda: bool(servicer.dtmf), what="DTMF at the speech side")
    assert (servicer.dtmf[0].digit, servicer.dtmf[0].source) == ("0", common_pb2.DTMF_SOURCE_WEBRTC)
    await page.wait_for_function("document.getElementById('dialog-state').textContent === 'agent'")

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webrtc-call.png"), full_page=True)

    # Hang up ends the session: CallEnd upstream, the stream closes, nothing is left on the gateway.
    await page.click("#hangup")
    await wait_until(lambda: servicer.call_ends == ["caller_hangup"], what="CallEnd at the speech side")
    await wait_until(lambda: servicer.streams_closed == 1, what="the speech stream to close")
    await wait_until(lambda: server.calls == {}, what="the gateway to forget the call")
    await page.wait_for_selector("#state[data-state='ended']")
    assert servicer.playback_started == ["greeting"]
    assert not [line for line in console if "error" in line.lower()], console


async def test_browser_sees_a_refused_offer(browser: Browser, softphone, standin):
    """A refused offer (no audio, as from a page without a microphone track) gets the 400 and its message."""
    server, base = softphone
    page = await browser.new_page()
    await page.goto(base + "/")
    status, body = await page.evaluate("""async () => {
        const pc = new RTCPeerConnection();
        pc.createDataChannel("dtmf");
        await pc.setLocalDescription(await pc.createOffer());
        const response = await fetch("/api/offer", {method: "POST", headers: {"Content-Type": "application/json"},
                                                    body: JSON.stringify({sdp: pc.localDescription.sdp})});
        pc.close();
        return [response.status, await response.json()];
    }""")
    assert status == 400 and "no audio m-line" in body["error"]
    assert server.calls == {} and standin[0].starts == []


async def test_page_with_access_key_passes_it_to_the_api(browser: Browser, standin):
    """Opened as /?key=..., the page's own API calls carry the key (the dialog list loads); a wrong key shows 401."""
    server = make_server(standin[1], access_key="s3cret")
    port = await server.start()
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/?key=s3cret")
        await page.wait_for_selector("#dialogs option[value='support']", state="attached")
        denied = await page.goto(f"http://127.0.0.1:{port}/?key=wrong")
        assert denied is not None and denied.status == 401
    finally:
        await server.close()

"""The whole platform from a browser: Chromium -> media gateway (WebRTC) -> speech gateway (VAD, Whisper,
piper) -> conversation runtime (order_status) -> integration gateway -> example backend, all real processes.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dialtone.conversation_runtime.config import StoreConfig
from dialtone.conversation_runtime.store import open_store
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.helpers import free_port, wait_for_port
from tests.webrtc.conftest import ARTIFACTS
from tests.webrtc.test_browser import inbound_audio

SERVICES_FILE = Path(__file__).resolve().parents[2] / "services" / "integration_gateway" / "examples" / "services.yaml"
SPOKEN = "My order number is 1 2 3 4 5."


@pytest.fixture
def spoken() -> str:
    return SPOKEN


@pytest.fixture
async def platform(tmp_path: Path, start_service):
    """All four services and the example backend on free loopback ports; yields (softphone URL, store path)."""
    backend_port, webrtc_port = free_port(), free_port()
    store = tmp_path / "sessions.sqlite3"
    backend = subprocess.Popen([sys.executable, "-m", "dialtone", "example-backend", "--port", str(backend_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_all() -> str:
        wait_for_port("127.0.0.1", backend_port, 30)
        integration = start_service("integration-gateway", env={
            "DIALTONE_INTEGRATION_GATEWAY__SERVICES_FILE": str(SERVICES_FILE),
            "DIALTONE_EXAMPLE_BACKEND_URL": f"http://127.0.0.1:{backend_port}"})
        runtime = start_service("conversation-runtime", env={
            "DIALTONE_CONVERSATION_RUNTIME__INTEGRATION_ADDRESS": integration.address,
            "DIALTONE_CONVERSATION_RUNTIME__STORE__PATH": str(store)})
        speech = start_service("speech-gateway", env={
            "DIALTONE_SPEECH_GATEWAY__RUNTIME_ADDRESS": runtime.address}, timeout=120)
        start_service("media-gateway", env={
            "DIALTONE_MEDIA_GATEWAY__SPEECH_GATEWAY_ADDRESS": speech.address,
            "DIALTONE_MEDIA_GATEWAY__SIP__PORT": "0",
            "DIALTONE_MEDIA_GATEWAY__WEBRTC__ENABLED": "true",
            "DIALTONE_MEDIA_GATEWAY__WEBRTC__PORT": str(webrtc_port),
            "DIALTONE_MEDIA_GATEWAY__WEBRTC__ICE_HOST_ADDRESSES": '["127.0.0.1"]',
            "DIALTONE_MEDIA_GATEWAY__WEBRTC__DIALOGS": '["order_status", "dtmf_menu"]'})
        return f"http://127.0.0.1:{webrtc_port}/"

    try:
        url = await asyncio.to_thread(start_all)
        yield url, store
    finally:
        backend.terminate()
        backend.wait(10)


async def dialog_state(page: Page) -> str:
    return (await page.text_content("#dialog-state")) or ""


async def session_ended_in_runtime(store_path: Path, session_id: str) -> bool:
    store = open_store(StoreConfig(path=str(store_path)))
    try:
        session = await store.load(session_id)
        return session is not None and session.ended
    finally:
        await store.close()


async def wait_session_ended(store_path: Path, session_id: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.2)):
        if await session_ended_in_runtime(store_path, session_id):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the runtime's session {session_id} did not end within {timeout} s")


async def test_order_number_spoken_in_a_browser(browser: Browser, platform):
    """Greeting heard, the spoken number transcribed on the panel, the dialog moves on; the call's end ends the
    runtime's session."""
    url, store = platform
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    await page.goto(url)
    await page.wait_for_selector("#dialogs option[value='order_status']", state="attached")
    await page.click("#call")
    await page.wait_for_selector("#state[data-state='connected']", timeout=30_000)
    session_id = await page.evaluate("window.softphone.sessionId")

    # The greeting (piper) is heard in the browser.
    await page.wait_for_selector("#dialog-said li:has-text('Welcome to Acme')", timeout=30_000)
    for _ in range(300):
        stats = await inbound_audio(page)
        if stats and stats["packetsReceived"] > 50 and stats["audioLevel"] > 0.01:
            break
        await asyncio.sleep(0.05)
    assert stats and stats["audioLevel"] > 0.01, stats

    # The looping microphone says the order number: Whisper's final transcript shows it (tiny.en on
    # espeak's voice may miss a digit, so: at least the 4 the dialog asks for), and the dialog takes
    # exactly that number to its lookup state.
    has_number = ("[...document.querySelectorAll('#caller li')]"
                  ".some(li => li.textContent.replace(/\\D/g, '').length >= 4)")
    try:
        await page.wait_for_function(has_number, timeout=60_000)
        await page.wait_for_selector("#dialog-said li:has-text('look up order')", timeout=30_000)
    except PlaywrightTimeout as exc:
        log = await page.text_content("#log") or ""
        raise AssertionError("no order number transcribed and looked up; the panel's event log:\n" + log) from exc
    heard = [re.sub(r"\D", "", text) for text in await page.locator("#caller li").all_text_contents()]
    looked_up = re.search(r"look up order (\d+)", await page.text_content("#dialog-said") or "")
    assert looked_up is not None and looked_up.group(1) in heard, (heard, looked_up)
    assert set(looked_up.group(1)) <= set("12345")
    await page.wait_for_function(
        "/lookup|tell_status|goodbye/.test(document.getElementById('dialog-state').textContent)", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webrtc-full-pipeline.png"), full_page=True)
    assert re.search(r"order_status", await dialog_state(page))

    # Hang up (unless the dialog already read the status and said goodbye: then it hung up itself).
    await page.evaluate("document.getElementById('hangup').click()")
    await page.wait_for_selector("#state[data-state='ended']")
    await wait_session_ended(store, session_id)


async def test_keypad_reaches_the_dialog(browser: Browser, platform):
    """In the DTMF menu dialog, keypad 1 (a data-channel key press, then Dtmf upstream) moves it to sales."""
    url, store = platform
    page = await browser.new_page()
    await page.goto(url)
    await page.fill("#dialog", "dtmf_menu")
    await page.click("#call")
    await page.wait_for_selector("#state[data-state='connected']", timeout=30_000)
    await page.wait_for_function("document.getElementById('dialog-state').textContent === 'dtmf_menu:main_menu'",
                                 timeout=30_000)
    await page.click("#keypad button[data-digit='1']")
    await page.wait_for_function("document.getElementById('dialog-state').textContent === 'dtmf_menu:sales'",
                                 timeout=20_000)
    session_id = await page.evaluate("window.softphone.sessionId")
    await page.click("#hangup")
    await page.wait_for_selector("#state[data-state='ended']")
    await wait_session_ended(store, session_id)

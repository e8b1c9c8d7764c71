"""Fixtures for the WebRTC tests: the stand-in speech gateway and the softphone HTTP server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dialtone.media_gateway.webrtc.config import WebRtcConfig
from dialtone.media_gateway.webrtc.http_server import WebRtcServer
from dialtone.media_gateway.webrtc.ice import use_host_addresses
from dialtone.media_gateway.webrtc.wiring import speech_link_factory
from playwright.async_api import Browser, async_playwright

from tests.helpers import REPO
from tests.webrtc.standin import StandInSpeechGateway, start_standin


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    """Every peer in these tests (aiortc's and the gateway's) offers only 127.0.0.1 as its host candidate."""
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


@pytest.fixture
async def standin() -> AsyncIterator[tuple[StandInSpeechGateway, str]]:
    servicer = StandInSpeechGateway()
    server, address = await start_standin(servicer)
    yield servicer, address
    await server.stop(0.5)


def make_server(address: str, **config: object) -> WebRtcServer:
    settings = {"port": 0, "dialogs": ["order_status", "support"], "ice_host_addresses": ["127.0.0.1"], **config}
    return WebRtcServer(WebRtcConfig(**settings), speech_link_factory(address))  # type: ignore[arg-type]


@pytest.fixture
async def softphone(standin) -> AsyncIterator[tuple[WebRtcServer, str]]:
    """The softphone server on a free loopback port, wired to the stand-in; yields (server, base URL)."""
    server = make_server(standin[1])
    port = await server.start()
    yield server, f"http://127.0.0.1:{port}"
    await server.close()


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts"


def spoken_wav(directory: Path, text: str) -> Path:
    """espeak-ng's voice of ``text``, as 16-bit 48 kHz mono (what Chromium's fake capture wants).

    Chromium loops the file; 2.5 s of silence after the words lets a VAD end each utterance whole.
    """
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        pytest.fail("espeak-ng and sox are needed (Debian packages; scripts/system-deps.sh test)")
    raw, wav = directory / "spoken_raw.wav", directory / "spoken_48k.wav"
    subprocess.run([espeak, "-s", "140", "-g", "8", "-w", str(raw), text], check=True, timeout=30)
    subprocess.run([sox, str(raw), "-r", "48000", "-c", "1", "-b", "16", str(wav), "pad", "0.5", "2.5"],
                   check=True, timeout=30)
    return wav


@pytest.fixture
def spoken() -> str:
    """What the browser's microphone says (a test module may override this fixture)."""
    return "My order number is 4 5 6 7."


@pytest.fixture
async def browser(tmp_path: Path, spoken: str) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (nothing downloads a browser); mic = ``spoken``."""
    wav = spoken_wav(tmp_path, spoken)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection"])
        try:
            yield browser
        finally:
            await browser.close()

"""Fixtures for the WebRTC tests: the stand-in speech gateway and the softphone HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from dialtone.media_gateway.webrtc.config import WebRtcConfig
from dialtone.media_gateway.webrtc.http_server import WebRtcServer
from dialtone.media_gateway.webrtc.ice import use_host_addresses
from dialtone.media_gateway.webrtc.wiring import speech_link_factory

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

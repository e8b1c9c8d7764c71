"""How the media gateway process starts the softphone: config in, a running ``WebRtcServer`` out."""

from __future__ import annotations

from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.media_gateway.speech_link import SpeechLink
from dialtone.media_gateway.webrtc.call import LinkFactory
from dialtone.media_gateway.webrtc.http_server import WebRtcServer


def speech_link_factory(speech_gateway_address: str) -> LinkFactory:
    """Links like a SIP call's: one bidi stream per call, across comma-separated replicas."""
    addresses = [a.strip() for a in speech_gateway_address.split(",") if a.strip()]
    if not addresses:
        raise ValueError("speech_gateway_address is empty: the softphone needs a speech gateway")

    def open_link(session_id, call_info, on_downlink):  # type: ignore[no-untyped-def]
        return SpeechLink(addresses, session_id, call_info, on_downlink)

    return open_link


async def start_softphone(config: MediaGatewayConfig) -> WebRtcServer | None:
    """Start the page + API when ``webrtc.enabled``; ValueError (at startup) for an unsafe or empty config."""
    if not config.webrtc.enabled:
        return None
    server = WebRtcServer(config.webrtc, speech_link_factory(config.speech_gateway_address))
    await server.start()
    return server

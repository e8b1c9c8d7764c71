"""How the media gateway process starts the softphone: config in, a running ``WebRtcServer`` out."""

from __future__ import annotations

from collections.abc import Callable

from dialtone.media_gateway.calls import CallRegistry, speech_targets
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.media_gateway.speech_link import ChannelPool, SpeechLink
from dialtone.media_gateway.webrtc.http_server import WebRtcServer
from dialtone.v1 import common_pb2
from dialtone.v1 import speech_gateway_pb2 as spb


class SpeechLinks:
    """Opens each browser call's ``SpeechLink`` as a SIP call's is opened: one bidi stream per call,
    across comma-separated replicas, over gRPC channels shared by all calls (``ChannelPool``)."""

    def __init__(self, speech_gateway_address: str, pool: ChannelPool | None = None) -> None:
        self._addresses = speech_targets(speech_gateway_address) if speech_gateway_address.strip() else []
        if not self._addresses:
            raise ValueError("speech_gateway_address is empty: the softphone needs a speech gateway")
        self._owns_pool = pool is None
        self._pool = pool or ChannelPool()

    def __call__(self, session_id: str, call_info: common_pb2.CallInfo,
                 on_downlink: Callable[[spb.MediaDownlink], None],
                 on_refused: Callable[[str], None] | None = None) -> SpeechLink:
        return SpeechLink(self._addresses, session_id, call_info, on_downlink, self._pool, on_refused)

    async def close(self) -> None:
        if self._owns_pool:
            await self._pool.close()


def speech_link_factory(speech_gateway_address: str, pool: ChannelPool | None = None) -> SpeechLinks:
    return SpeechLinks(speech_gateway_address, pool)


async def start_softphone(config: MediaGatewayConfig, registry: CallRegistry) -> WebRtcServer | None:
    """Start the page + API when ``webrtc.enabled``, its calls in the gateway's one ``registry`` (and its
    speech channel pool); ValueError (at startup) for an unsafe or empty config."""
    if not config.webrtc.enabled:
        return None
    server = WebRtcServer(config.webrtc, speech_link_factory(config.speech_gateway_address, registry.channels),
                          registry)
    await server.start()
    return server

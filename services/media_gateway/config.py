from __future__ import annotations

import dataclasses

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig
from dialtone.media_gateway.webrtc.config import WebRtcConfig


@dataclasses.dataclass
class SipConfig:
    host: str = "127.0.0.1"
    port: int = 5060


@dataclasses.dataclass
class MediaGatewayConfig(ServiceConfig):
    grpc: GrpcServerConfig = dataclasses.field(default_factory=lambda: GrpcServerConfig(port=7001))
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9101))
    speech_gateway_address: str = "127.0.0.1:7002"
    sip: SipConfig = dataclasses.field(default_factory=SipConfig)
    webrtc: WebRtcConfig = dataclasses.field(default_factory=WebRtcConfig)

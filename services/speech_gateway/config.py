from __future__ import annotations

import dataclasses

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig


@dataclasses.dataclass
class SpeechGatewayConfig(ServiceConfig):
    grpc: GrpcServerConfig = dataclasses.field(default_factory=lambda: GrpcServerConfig(port=7002))
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9102))
    runtime_address: str = "127.0.0.1:7003"

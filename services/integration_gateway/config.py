from __future__ import annotations

import dataclasses

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig


@dataclasses.dataclass
class IntegrationGatewayConfig(ServiceConfig):
    grpc: GrpcServerConfig = dataclasses.field(default_factory=lambda: GrpcServerConfig(port=7004))
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9104))

"""The integration gateway's gRPC servicer and process wiring."""

from __future__ import annotations

import json

import grpc

from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_validation import abort_invalid, require_session_id
from dialtone.common.ids import parse_idempotency_key
from dialtone.integration_gateway.config import IntegrationGatewayConfig
from dialtone.v1 import integration_gateway_pb2 as pb
from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc


def validate_request(request: pb.ActionRequest) -> dict:
    require_session_id(request.session_id, "ActionRequest")
    if not request.idempotency_key:
        raise InvalidArgument("ActionRequest: idempotency_key is required (session:seq:index)")
    try:
        parse_idempotency_key(request.idempotency_key)
    except ValueError as exc:
        raise InvalidArgument(f"ActionRequest: {exc}") from exc
    if not request.service or not request.method:
        raise InvalidArgument("ActionRequest: service and method are required")
    try:
        payload = json.loads(request.payload_json) if request.payload_json else {}
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"ActionRequest: payload_json is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidArgument("ActionRequest: payload_json must be a JSON object")
    return payload


class IntegrationGatewayServicer(pb_grpc.IntegrationGatewayServicer):
    def __init__(self, config: IntegrationGatewayConfig) -> None:
        self._config = config

    async def Invoke(self, request: pb.ActionRequest, context: grpc.aio.ServicerContext) -> pb.ActionResult:
        try:
            validate_request(request)
        except InvalidArgument as exc:
            await abort_invalid(context, exc)
        return pb.ActionResult(ok=False, error_kind=pb.ERROR_KIND_UNKNOWN_SERVICE, attempts=0,
                               idempotency_key=request.idempotency_key,
                               error_message=f"no service named {request.service!r} is configured")


class IntegrationGatewayApp:
    def __init__(self, config: IntegrationGatewayConfig) -> None:
        self.config = config
        self.servicer = IntegrationGatewayServicer(config)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_IntegrationGatewayServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["IntegrationGateway"].full_name]

    async def start(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None

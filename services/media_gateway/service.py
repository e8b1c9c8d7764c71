"""The media gateway's control API servicer and process wiring."""

from __future__ import annotations

import grpc

from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_validation import abort_invalid, require_session_id
from dialtone.media_gateway.config import MediaGatewayConfig
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc


class MediaGatewayControlServicer(pb_grpc.MediaGatewayControlServicer):
    def __init__(self, config: MediaGatewayConfig) -> None:
        self._config = config

    async def ListCalls(self, request: pb.ListCallsRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListCallsResponse:
        return pb.ListCallsResponse()

    async def HangupCall(self, request: pb.HangupCallRequest,
                         context: grpc.aio.ServicerContext) -> pb.HangupCallResponse:
        try:
            require_session_id(request.session_id, "HangupCallRequest")
        except InvalidArgument as exc:
            await abort_invalid(context, exc)
        return pb.HangupCallResponse(found=False)

    async def Originate(self, request: pb.OriginateRequest,
                        context: grpc.aio.ServicerContext) -> pb.OriginateResponse:
        if not request.to_uri.startswith(("sip:", "sips:")):
            await abort_invalid(context, InvalidArgument(
                f"OriginateRequest: to_uri must be a SIP URI (sip:user@host), got {request.to_uri[:80]!r}"))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "outbound calling is not available yet")
        raise AssertionError("unreachable")


class MediaGatewayApp:
    def __init__(self, config: MediaGatewayConfig) -> None:
        self.config = config
        self.servicer = MediaGatewayControlServicer(config)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_MediaGatewayControlServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["MediaGatewayControl"].full_name]

    async def start(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None

"""The speech gateway's gRPC servicer and process wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_validation import abort_invalid, require_session_id
from dialtone.speech_gateway.config import SpeechGatewayConfig
from dialtone.v1 import speech_gateway_pb2 as pb
from dialtone.v1 import speech_gateway_pb2_grpc as pb_grpc


def validate_first_message(message: pb.MediaUplink) -> None:
    require_session_id(message.session_id, "MediaUplink")
    if message.WhichOneof("payload") != "call_start":
        raise InvalidArgument("MediaUplink: a stream must begin with call_start, "
                              f"got {message.WhichOneof('payload') or 'an empty message'}")


class SpeechGatewayServicer(pb_grpc.SpeechGatewayServicer):
    def __init__(self, config: SpeechGatewayConfig) -> None:
        self._config = config

    async def StreamCall(self, request_iterator: AsyncIterator[pb.MediaUplink],
                         context: grpc.aio.ServicerContext) -> AsyncIterator[pb.MediaDownlink]:
        first = True
        async for message in request_iterator:
            try:
                if first:
                    validate_first_message(message)
                    first = False
                else:
                    require_session_id(message.session_id, "MediaUplink")
            except InvalidArgument as exc:
                await abort_invalid(context, exc)
        return
        yield


class SpeechGatewayApp:
    def __init__(self, config: SpeechGatewayConfig) -> None:
        self.config = config
        self.servicer = SpeechGatewayServicer(config)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_SpeechGatewayServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["SpeechGateway"].full_name]

    async def start(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None

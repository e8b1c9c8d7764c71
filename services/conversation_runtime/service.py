"""The conversation runtime's gRPC servicer and process wiring."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_validation import abort_invalid, require_session_id
from dialtone.conversation_runtime.config import ConversationRuntimeConfig
from dialtone.v1 import conversation_runtime_pb2 as pb
from dialtone.v1 import conversation_runtime_pb2_grpc as pb_grpc


def validate_first_event(event: pb.SpeechEvent) -> None:
    require_session_id(event.session_id, "SpeechEvent")
    if event.WhichOneof("payload") not in ("call_started", "resume"):
        raise InvalidArgument("SpeechEvent: a stream must begin with call_started or resume, "
                              f"got {event.WhichOneof('payload') or 'an empty event'}")


class ConversationRuntimeServicer(pb_grpc.ConversationRuntimeServicer):
    def __init__(self, config: ConversationRuntimeConfig) -> None:
        self._config = config

    async def Converse(self, request_iterator: AsyncIterator[pb.SpeechEvent],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[pb.DialogAction]:
        first = True
        async for event in request_iterator:
            try:
                if first:
                    validate_first_event(event)
                    first = False
                else:
                    require_session_id(event.session_id, "SpeechEvent")
            except InvalidArgument as exc:
                await abort_invalid(context, exc)
        return
        yield  # an async generator that (for now) issues no actions


class ConversationRuntimeApp:
    def __init__(self, config: ConversationRuntimeConfig) -> None:
        self.config = config
        self.servicer = ConversationRuntimeServicer(config)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_ConversationRuntimeServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["ConversationRuntime"].full_name]

    async def start(self) -> None:
        return None

    async def drain(self) -> None:
        return None

    async def close(self) -> None:
        return None

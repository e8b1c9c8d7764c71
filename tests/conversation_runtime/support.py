"""Test helpers: a real grpc.aio IntegrationGateway servicer answering the example methods, and a
client for the runtime's Converse stream."""

from __future__ import annotations

import asyncio
import json

import grpc
from dialtone.v1 import common_pb2
from dialtone.v1 import conversation_runtime_pb2 as pb
from dialtone.v1 import conversation_runtime_pb2_grpc as pb_grpc
from dialtone.v1 import integration_gateway_pb2 as ig
from dialtone.v1 import integration_gateway_pb2_grpc as ig_grpc


class ExampleGateway(ig_grpc.IntegrationGatewayServicer):
    """Answers orders.get_status and appointments.book like the example backend; records requests."""

    def __init__(self) -> None:
        self.requests: list[ig.ActionRequest] = []

    async def Invoke(self, request: ig.ActionRequest, context: grpc.aio.ServicerContext) -> ig.ActionResult:
        self.requests.append(request)
        payload = json.loads(request.payload_json or "{}")
        if (request.service, request.method) == ("orders", "get_status"):
            if payload.get("order_id") == "404404":
                return ig.ActionResult(ok=False, http_status=404, error_kind=ig.ERROR_KIND_HTTP_ERROR,
                                       idempotency_key=request.idempotency_key)
            body = {"order_id": payload.get("order_id"), "status": "shipped", "eta": "Tuesday"}
            return ig.ActionResult(ok=True, http_status=200, body_json=json.dumps(body), attempts=1,
                                   idempotency_key=request.idempotency_key)
        if (request.service, request.method) == ("appointments", "book"):
            return ig.ActionResult(ok=True, http_status=200, body_json='{"confirmation": "AB12"}',
                                   idempotency_key=request.idempotency_key)
        return ig.ActionResult(ok=False, error_kind=ig.ERROR_KIND_UNKNOWN_SERVICE,
                               idempotency_key=request.idempotency_key)


async def start_gateway() -> tuple[grpc.aio.Server, ExampleGateway, str]:
    server = grpc.aio.server()
    servicer = ExampleGateway()
    ig_grpc.add_IntegrationGatewayServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, servicer, f"127.0.0.1:{port}"


def call_started(session_id: str, seq: int = 1, callee: str = "1000", dialog: str = "",
                 headers: dict[str, str] | None = None) -> pb.SpeechEvent:
    info = common_pb2.CallInfo(caller="sip:alice@127.0.0.1", callee=callee, dialog=dialog,
                               headers=[common_pb2.SipHeader(name=k, value=v) for k, v in (headers or {}).items()])
    return pb.SpeechEvent(session_id=session_id, seq=seq, call_started=pb.CallStarted(call=info))


def resume(session_id: str, last_event_seq: int, last_action_seq: int) -> pb.SpeechEvent:
    return pb.SpeechEvent(session_id=session_id, seq=0,
                          resume=pb.Resume(last_event_seq=last_event_seq, last_action_seq=last_action_seq))


def dtmf(session_id: str, seq: int, digit: str) -> pb.SpeechEvent:
    return pb.SpeechEvent(session_id=session_id, seq=seq, dtmf=common_pb2.Dtmf(digit=digit))


def transcript(session_id: str, seq: int, text: str) -> pb.SpeechEvent:
    return pb.SpeechEvent(session_id=session_id, seq=seq,
                          transcript=pb.Transcript(text=text, is_final=True, confidence=0.9))


class Stream:
    """One Converse stream: send events, read actions (with a bound on waiting). PrepareReply messages
    (texts to render ahead, not actions of the dialog) are kept apart in ``prepared``."""

    def __init__(self, address: str) -> None:
        self.prepared: list[pb.PrepareReply] = []
        self.channel = grpc.aio.insecure_channel(address)
        self.outgoing: asyncio.Queue[pb.SpeechEvent | None] = asyncio.Queue()
        self.call = pb_grpc.ConversationRuntimeStub(self.channel).Converse(self._requests())

    async def _requests(self):
        while True:
            item = await self.outgoing.get()
            if item is None:
                return
            yield item

    async def send(self, event: pb.SpeechEvent) -> None:
        await self.outgoing.put(event)

    async def _next(self, timeout: float) -> pb.DialogAction:
        while True:
            action = await asyncio.wait_for(self.call.read(), timeout)
            if action is grpc.aio.EOF or action.WhichOneof("payload") != "prepare_reply":
                return action
            self.prepared.append(action.prepare_reply)

    async def read(self, count: int, timeout: float = 30.0) -> list[pb.DialogAction]:
        out = []
        for _ in range(count):
            action = await self._next(timeout)
            assert action is not grpc.aio.EOF, f"stream ended after {[a.WhichOneof('payload') for a in out]}"
            out.append(action)
        return out

    async def read_until(self, kind: str, timeout: float = 30.0, limit: int = 50) -> list[pb.DialogAction]:
        out = []
        for _ in range(limit):
            action = await self._next(timeout)
            assert action is not grpc.aio.EOF, f"stream ended after {[a.WhichOneof('payload') for a in out]}"
            out.append(action)
            if action.WhichOneof("payload") == kind:
                return out
        raise AssertionError(f"no {kind} in {limit} actions")

    async def close(self) -> None:
        await self.outgoing.put(None)
        self.call.cancel()
        await self.channel.close()


def kinds(actions: list[pb.DialogAction]) -> list[str]:
    return [a.WhichOneof("payload") for a in actions]

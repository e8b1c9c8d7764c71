"""``call`` actions to the integration gateway (``IntegrationGateway.Invoke``), answers as events.

Every outcome becomes a ``BackendResult`` the dialog can handle: the gateway's own result, or
an error kind when the gateway cannot be reached (connect_error) or does not answer in time
(timeout). gRPC's retry policy re-sends on UNAVAILABLE with the same idempotency key, so a
gateway replica that dies mid-call does not make the backend run twice. The channel is plaintext
or mutual TLS per the runtime's ``tls`` section (``ChannelPool``: remade when its files change).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
from dialtone.common.config import TlsConfig
from dialtone.common.grpc_channel import ChannelPool
from dialtone.conversation_runtime.core.events import BackendResult
from dialtone.integration_gateway.errors import ErrorKind
from dialtone.v1 import integration_gateway_pb2 as ig
from dialtone.v1 import integration_gateway_pb2_grpc as ig_grpc

log = logging.getLogger(__name__)

_ERROR_KINDS = {
    ig.ERROR_KIND_TIMEOUT: ErrorKind.TIMEOUT,
    ig.ERROR_KIND_CONNECT_ERROR: ErrorKind.CONNECT_ERROR,
    ig.ERROR_KIND_HTTP_ERROR: ErrorKind.HTTP_ERROR,
    ig.ERROR_KIND_BREAKER_OPEN: ErrorKind.BREAKER_OPEN,
    ig.ERROR_KIND_RATE_LIMITED: ErrorKind.RATE_LIMITED,
    ig.ERROR_KIND_INVALID_REQUEST: ErrorKind.INVALID_REQUEST,
    ig.ERROR_KIND_UNKNOWN_SERVICE: ErrorKind.UNKNOWN_SERVICE,
}
# the gateway not answering in time, or refusing the request itself; any other failure: not reached
_RPC_ERROR_KINDS = {grpc.StatusCode.DEADLINE_EXCEEDED: ErrorKind.TIMEOUT,
                    grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.INVALID_REQUEST}
_RETRY_CONFIG = json.dumps({"methodConfig": [{
    "name": [{"service": "dialtone.v1.IntegrationGateway"}],
    "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]},
}]})


class BackendClient:
    def __init__(self, address: str, default_timeout_s: float, tls: TlsConfig | None = None) -> None:
        self._address = address
        self._channels = ChannelPool(tls, options=[("grpc.service_config", _RETRY_CONFIG), ("grpc.enable_retries", 1)])
        self._channel: grpc.aio.Channel | None = None
        self._stub: ig_grpc.IntegrationGatewayStub | None = None
        self._default_timeout_s = default_timeout_s

    def _current_stub(self) -> ig_grpc.IntegrationGatewayStub:
        channel = self._channels.get(self._address)
        if channel is not self._channel or self._stub is None:   # a new certificate: a new channel
            self._channel, self._stub = channel, ig_grpc.IntegrationGatewayStub(channel)
        return self._stub

    async def invoke(self, session_id: str, key: str, call: dict[str, Any]) -> BackendResult:
        timeout_ms = int(call.get("timeout_ms") or 0)
        request = ig.ActionRequest(session_id=session_id, idempotency_key=key, service=call["service"],
                                   method=call["method"], payload_json=json.dumps(call.get("payload") or {}),
                                   timeout_ms=timeout_ms)
        deadline = (timeout_ms / 1000.0 if timeout_ms else self._default_timeout_s) + 1.0
        try:
            reply = await self._current_stub().Invoke(request, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            kind = _RPC_ERROR_KINDS.get(exc.code(), ErrorKind.CONNECT_ERROR)
            log.warning("integration gateway call %s.%s failed: %s %s", call["service"], call["method"],
                        exc.code().name, exc.details())
            return BackendResult(key, False, 0, None, kind, f"integration gateway: {exc.code().name}")
        return BackendResult(key, reply.ok, reply.http_status, _body(reply.body_json),
                             "" if reply.ok else _ERROR_KINDS.get(reply.error_kind, ErrorKind.HTTP_ERROR),
                             reply.error_message)

    async def close(self) -> None:
        await self._channels.close()


def _body(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text

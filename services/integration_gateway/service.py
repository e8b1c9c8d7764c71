"""The integration gateway's gRPC servicer and process wiring. Only this module
converts between protobuf and the gateway's domain types."""

from __future__ import annotations

import logging

import grpc
from dialtone.common.config import ConfigError
from dialtone.common.errors import InvalidArgument
from dialtone.common.grpc_validation import refuse, require_max_length, require_session_id
from dialtone.common.ids import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_SESSION_ID_LENGTH, parse_idempotency_key
from dialtone.common.limits import JsonTooDeep, loads_json
from dialtone.integration_gateway.config import IntegrationGatewayConfig, load_services
from dialtone.integration_gateway.errors import ErrorKind, StoreUnavailable
from dialtone.integration_gateway.gateway import ActionCall, ActionOutcome, IntegrationGateway
from dialtone.integration_gateway.store import MemoryStore, StateStore
from dialtone.v1 import integration_gateway_pb2 as pb
from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

_ERROR_KINDS = {
    "": pb.ERROR_KIND_UNSPECIFIED,
    ErrorKind.TIMEOUT: pb.ERROR_KIND_TIMEOUT,
    ErrorKind.CONNECT_ERROR: pb.ERROR_KIND_CONNECT_ERROR,
    ErrorKind.HTTP_ERROR: pb.ERROR_KIND_HTTP_ERROR,
    ErrorKind.BREAKER_OPEN: pb.ERROR_KIND_BREAKER_OPEN,
    ErrorKind.RATE_LIMITED: pb.ERROR_KIND_RATE_LIMITED,
    ErrorKind.INVALID_REQUEST: pb.ERROR_KIND_INVALID_REQUEST,
    ErrorKind.UNKNOWN_SERVICE: pb.ERROR_KIND_UNKNOWN_SERVICE,
}


MAX_NAME_LENGTH = 128  # service and method names
MAX_TIMEOUT_MS = 600_000  # a backend call never outlives a dialog's ten-minute session


def validate_request(request: pb.ActionRequest, max_payload_bytes: int = 64 * 1024) -> dict:
    # Sizes first: an oversized field is refused before it is parsed, quoted or stored.
    require_max_length(request.session_id, MAX_SESSION_ID_LENGTH, "ActionRequest: session_id")
    require_max_length(request.idempotency_key, MAX_IDEMPOTENCY_KEY_LENGTH, "ActionRequest: idempotency_key")
    require_max_length(request.service, MAX_NAME_LENGTH, "ActionRequest: service")
    require_max_length(request.method, MAX_NAME_LENGTH, "ActionRequest: method")
    require_max_length(request.payload_json, max_payload_bytes, "ActionRequest: payload_json")
    if request.timeout_ms > MAX_TIMEOUT_MS:
        raise InvalidArgument(f"ActionRequest: timeout_ms is {request.timeout_ms}; the limit is {MAX_TIMEOUT_MS}")
    require_session_id(request.session_id, "ActionRequest")
    if not request.idempotency_key:
        raise InvalidArgument("ActionRequest: idempotency_key is required (session:seq:index)")
    try:
        key = parse_idempotency_key(request.idempotency_key)
    except ValueError as exc:
        raise InvalidArgument(f"ActionRequest: {exc}") from exc
    if key.session_id != request.session_id:
        raise InvalidArgument("ActionRequest: idempotency_key must start with the request's session_id")
    if not request.service or not request.method:
        raise InvalidArgument("ActionRequest: service and method are required")
    try:
        payload = loads_json(request.payload_json) if request.payload_json else {}
    except JsonTooDeep as exc:
        raise InvalidArgument(f"ActionRequest: payload_json is refused: {exc}") from exc
    except ValueError as exc:
        raise InvalidArgument(f"ActionRequest: payload_json is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidArgument("ActionRequest: payload_json must be a JSON object")
    return payload


def to_result(outcome: ActionOutcome) -> pb.ActionResult:
    return pb.ActionResult(ok=outcome.ok, http_status=outcome.http_status, body_json=outcome.body_json,
                           attempts=outcome.attempts, error_kind=_ERROR_KINDS[outcome.error_kind],
                           error_message=outcome.error_message, idempotency_key=outcome.key,
                           replayed=outcome.replayed, latency_ms=outcome.latency_ms)


class IntegrationGatewayServicer(pb_grpc.IntegrationGatewayServicer):
    def __init__(self, config: IntegrationGatewayConfig, gateway: IntegrationGateway) -> None:
        self._config = config
        self._gateway = gateway

    async def Invoke(self, request: pb.ActionRequest, context: grpc.aio.ServicerContext) -> pb.ActionResult:
        try:
            payload = validate_request(request, self._config.max_payload_bytes)
        except InvalidArgument as exc:
            refuse(context, exc)
            return pb.ActionResult()
        call = ActionCall(session_id=request.session_id, key=request.idempotency_key, service=request.service,
                          method=request.method, payload=payload, timeout_ms=request.timeout_ms)
        return to_result(await self._gateway.invoke(call))


def make_store(config: IntegrationGatewayConfig) -> StateStore:
    if config.store.kind == "redis":
        if not config.store.redis_url:
            raise ConfigError("store.redis_url: required when store.kind is 'redis'")
        from dialtone.integration_gateway.store_redis import RedisStore

        return RedisStore(config.store.redis_url, config.store.key_prefix, config.store)
    return MemoryStore()


class IntegrationGatewayApp:
    def __init__(self, config: IntegrationGatewayConfig) -> None:
        self.config = config
        self.services = load_services(config)  # bad config fails here, before the port opens
        self.store = make_store(config)
        self.gateway = IntegrationGateway(config, self.services, self.store)
        self.servicer = IntegrationGatewayServicer(config, self.gateway)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pb_grpc.add_IntegrationGatewayServicer_to_server(self.servicer, server)
        return [pb.DESCRIPTOR.services_by_name["IntegrationGateway"].full_name]

    async def start(self) -> None:
        ping = getattr(self.store, "ping", None)
        if ping is not None:
            try:
                await ping()
            except StoreUnavailable as exc:
                raise OSError(str(exc)) from exc
        log.info("integration gateway ready with %d service(s): %s", len(self.services),
                 ", ".join(sorted(self.services)) or "(none)")

    async def drain(self) -> None:
        return None  # the gRPC server's grace period lets Invokes in hand finish

    async def close(self) -> None:
        await self.gateway.close()
        await self.store.close()

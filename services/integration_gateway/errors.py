"""The integration gateway's errors. Each carries its wire answer.

    DialtoneError (common)
      +-- InvalidArgument (common)       gRPC INVALID_ARGUMENT: a malformed ActionRequest
      +-- GatewayError                   an ActionResult with ok=false and error_kind
            +-- UnknownService           ERROR_KIND_UNKNOWN_SERVICE
            +-- InvalidRequest           ERROR_KIND_INVALID_REQUEST (unknown method, payload misses a path key)
            +-- StoreUnavailable         ERROR_KIND_CONNECT_ERROR (the shared store cannot be reached)

Backend failures (timeouts, refused connections, HTTP errors) are not exceptions
here: the adapter turns them into attempt outcomes and the gateway into results.
"""

from __future__ import annotations

import enum

from dialtone.common.errors import DialtoneError


class ErrorKind(enum.StrEnum):
    """Why an action failed: ActionResult.error_kind (service.py maps each to the wire's enum)."""

    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    HTTP_ERROR = "http_error"
    BREAKER_OPEN = "breaker_open"
    RATE_LIMITED = "rate_limited"
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_SERVICE = "unknown_service"


class GatewayError(DialtoneError):
    error_kind = ErrorKind.INVALID_REQUEST


class UnknownService(GatewayError):
    error_kind = ErrorKind.UNKNOWN_SERVICE


class InvalidRequest(GatewayError):
    error_kind = ErrorKind.INVALID_REQUEST


class StoreUnavailable(GatewayError):
    error_kind = ErrorKind.CONNECT_ERROR

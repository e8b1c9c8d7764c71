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

from dialtone.common.errors import DialtoneError


class GatewayError(DialtoneError):
    error_kind = "invalid_request"


class UnknownService(GatewayError):
    error_kind = "unknown_service"


class InvalidRequest(GatewayError):
    error_kind = "invalid_request"


class StoreUnavailable(GatewayError):
    error_kind = "connect_error"

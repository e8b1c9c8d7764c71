"""The conversation runtime's errors, each with its gRPC answer.

    DialtoneError (dialtone.common.errors)
      +-- InvalidArgument       INVALID_ARGUMENT: a malformed or out-of-place event (common)
      +-- StoreUnavailable      UNAVAILABLE: the state store cannot be read or written; the
                                speech gateway reconnects with resume (here or elsewhere)
"""

from __future__ import annotations

import grpc
from dialtone.common.errors import DialtoneError


class StoreUnavailable(DialtoneError):
    grpc_status = grpc.StatusCode.UNAVAILABLE

"""Errors shared by the services. Each carries its wire answer.

    DialtoneError
      +-- InvalidArgument      gRPC INVALID_ARGUMENT (a request that is malformed)
"""

from __future__ import annotations

import grpc


class DialtoneError(Exception):
    grpc_status = grpc.StatusCode.INTERNAL


class InvalidArgument(DialtoneError):
    """A request that can never succeed as sent; the message tells the caller why."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT

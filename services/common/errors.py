"""Errors shared by the services. Each carries its wire answer.

    DialtoneError
      +-- InvalidArgument      gRPC INVALID_ARGUMENT (a request that is malformed)

An error message quotes caller input only through ``quote_prefix``: a message that
echoes a megabyte of input would itself exceed gRPC's metadata limit, and the caller
would see RESOURCE_EXHAUSTED instead of the real reason.
"""

from __future__ import annotations

import grpc
from dialtone.common.quoting import QUOTE_LIMIT, quote_prefix

__all__ = ["QUOTE_LIMIT", "DialtoneError", "InvalidArgument", "quote_prefix"]


class DialtoneError(Exception):
    grpc_status = grpc.StatusCode.INTERNAL


class InvalidArgument(DialtoneError):
    """A request that can never succeed as sent; the message tells the caller why."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT

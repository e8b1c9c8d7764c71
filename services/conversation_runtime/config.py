"""The conversation runtime's config: dialogs, routing, the state store and the gateway address."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig
from dialtone.common.redis_client import RedisHaConfig

EXAMPLES_DIR = str(Path(__file__).resolve().parent / "examples")
MAX_MESSAGE_BYTES = 256 * 1024


@dataclasses.dataclass
class StoreConfig(RedisHaConfig):
    """redis: ``url``, plus ``sentinel`` or ``cluster`` for a Redis that survives a server's loss
    (dialtone.common.redis_client)."""

    kind: Literal["sqlite", "redis"] = "sqlite"
    path: str = "dialtone-sessions.sqlite3"      # sqlite: the file (created when missing)
    url: str = "redis://127.0.0.1:6379/0"        # redis
    retention_s: float = 86400.0                 # sessions are kept this long after their call started


@dataclasses.dataclass
class RouteConfig:
    """One routing rule; the first that matches a call picks its dialog."""

    dialog: str
    number: str = ""       # the dialed number (CallInfo.callee) equals this
    header: str = ""       # or: this SIP header (case-insensitive name) ...
    value: str = ""        # ... has this value


@dataclasses.dataclass
class RuntimeGrpcConfig(GrpcServerConfig):
    """Defaults of the class, not of a factory: a config that sets only some of the section's keys
    is built from these."""

    port: int = 7003
    # The largest message a speech gateway may send is a CallStarted with 64 kB of headers
    # (convert.py's limits): a larger one is refused by gRPC before it is read into memory.
    max_message_bytes: int = MAX_MESSAGE_BYTES


@dataclasses.dataclass
class ConversationRuntimeConfig(ServiceConfig):
    grpc: RuntimeGrpcConfig = dataclasses.field(default_factory=RuntimeGrpcConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9103))
    integration_address: str = "127.0.0.1:7004"
    dialogs: list[str] = dataclasses.field(default_factory=lambda: [EXAMPLES_DIR])  # files or folders
    routes: list[RouteConfig] = dataclasses.field(default_factory=list)
    default_dialog: str = "order_status"
    store: StoreConfig = dataclasses.field(default_factory=StoreConfig)
    reload_interval_s: float = 2.0    # how often dialog files are checked for changes (0 = never)
    lease_ttl_s: float = 5.0          # a replica that stops renewing loses its sessions after this
    timer_poll_s: float = 0.25        # how often the store is asked for sessions to park or end
    orphan_timeout_s: float = 60.0    # a call whose stream closed ends as stream_lost unless resumed within this
    backend_timeout_s: float = 10.0   # per Invoke when the call action names no timeout

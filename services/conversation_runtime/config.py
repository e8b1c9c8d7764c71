"""The conversation runtime's config: dialogs, routing, the state store and the gateway address."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from dialtone.common.config import GrpcServerConfig, MetricsConfig, ServiceConfig

EXAMPLES_DIR = str(Path(__file__).resolve().parent / "examples")


@dataclasses.dataclass
class StoreConfig:
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
class ConversationRuntimeConfig(ServiceConfig):
    grpc: GrpcServerConfig = dataclasses.field(default_factory=lambda: GrpcServerConfig(port=7003))
    metrics: MetricsConfig = dataclasses.field(default_factory=lambda: MetricsConfig(port=9103))
    integration_address: str = "127.0.0.1:7004"
    dialogs: list[str] = dataclasses.field(default_factory=lambda: [EXAMPLES_DIR])  # files or folders
    routes: list[RouteConfig] = dataclasses.field(default_factory=list)
    default_dialog: str = "order_status"
    store: StoreConfig = dataclasses.field(default_factory=StoreConfig)
    reload_interval_s: float = 2.0    # how often dialog files are checked for changes (0 = never)
    lease_ttl_s: float = 5.0          # a replica that stops renewing loses its sessions after this
    timer_poll_s: float = 0.25        # how often the store is asked for sessions with due timers
    backend_timeout_s: float = 10.0   # per Invoke when the call action names no timeout

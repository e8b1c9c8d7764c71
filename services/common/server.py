"""gRPC service bootstrap shared by the four services.

``create_server(config, app)`` builds a ``grpc.aio`` server with health, reflection
and metrics and returns it with its bound port (tests bind port 0). With a ``tls`` section it
serves mutual TLS only (``dialtone.common.tls``), plus, when ``tls.health_port`` is set, a
plaintext port with nothing but grpc.health.v1 for probes that cannot speak TLS. An app's
control services (``control_auth``) need a bearer token (``dialtone.common.auth``); so does the
metrics endpoint bound beyond loopback.
``run_service(name, config, app)`` runs one until SIGTERM/SIGINT, then drains:
health turns NOT_SERVING, the app stops taking new work and finishes what it holds
(bounded by ``shutdown_grace_s``), the server stops, and the process exits 0. An app
with a ``watch()`` that reports it can no longer serve gets NOT_SERVING and exit 70.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc
from dialtone.common.auth import BearerTokenInterceptor, load_token, require_token
from dialtone.common.config import ServiceConfig, TlsConfig
from dialtone.common.grpc_channel import channel
from dialtone.common.metrics import counter, histogram, start_metrics_server
from dialtone.common.tls import grpc_server_credentials, mutual_tls
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger(__name__)

EXIT_UNHEALTHY = 70          # EX_SOFTWARE: the app found itself unable to serve (see ServiceApp.watch)
UNHEALTHY_CLOSE_S = 5.0
MAX_CALL_MS = 24 * 3600 * 1000   # a call's stream on an aged connection is never cut

GRPC_REQUESTS = counter("grpc_requests_total", "gRPC calls handled, by method and status code",
                        ["method", "code"])
GRPC_STARTED = counter("grpc_started_total", "gRPC calls started, by method", ["method"])
GRPC_LATENCY = histogram("grpc_request_seconds", "gRPC unary call latency, by method", ["method"])


class ServiceApp(Protocol):
    """What a service plugs into the bootstrap."""

    def register(self, server: grpc.aio.Server) -> list[str]:
        """Add servicers to ``server``; return their full service names (for health/reflection)."""

    async def start(self) -> None:
        """Open sockets, load models, connect stores. Runs before the port reports SERVING."""

    async def drain(self) -> None:
        """Stop taking new work and return when the work in hand is done."""

    async def close(self) -> None:
        """Release everything. Runs after the gRPC server stopped."""

    # Optional: ``async def watch(self) -> str`` returns (the reason) once the app can no longer
    # serve although the process runs; health then turns NOT_SERVING and the process exits
    # with EXIT_UNHEALTHY so that its supervisor restarts it.
    # Optional: ``def control_auth(self) -> tuple[list[str], str]``: full names of services whose
    # calls need ``authorization: Bearer <token>``, and the token ("" = open; the app refuses, at
    # construction, an open control API bound beyond loopback).


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every call and times unary ones. Method names are bounded by the contract."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith("/grpc.reflection") or method.startswith("/grpc.health"):
            return handler
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                GRPC_STARTED.labels(method).inc()
                started = time.perf_counter()
                code = "OK"
                try:
                    return await inner(request, context)
                except BaseException:
                    code = _code_name(context) or "UNKNOWN"
                    raise
                finally:
                    if code == "OK":
                        code = _code_name(context) or "OK"
                    GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)
                    GRPC_REQUESTS.labels(method, code).inc()

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.stream_stream is not None:
            inner_stream = handler.stream_stream

            async def stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                GRPC_STARTED.labels(method).inc()
                code = "OK"
                try:
                    async for item in inner_stream(request_iterator, context):
                        yield item
                except BaseException:
                    code = _code_name(context) or "CANCELLED"
                    raise
                finally:
                    if code == "OK":
                        code = _code_name(context) or "OK"
                    GRPC_REQUESTS.labels(method, code).inc()

            return grpc.stream_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler


def _code_name(context: grpc.aio.ServicerContext) -> str | None:
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 - code() is unavailable on some context states
        return None
    if code is None:
        return None
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class RunningServer:
    def __init__(self, server: grpc.aio.Server, port: int, health_servicer: health.aio.HealthServicer,
                 names: list[str], health_server: grpc.aio.Server | None = None, health_port: int = 0) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self.names = names
        self.health_server = health_server     # the plaintext health-only server (tls.health_port)
        self.health_port = health_port

    async def start(self) -> None:
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()

    async def stop(self, grace: float) -> None:
        if self.health_server is not None:
            await self.health_server.stop(grace)
        await self.server.stop(grace)

    async def set_serving(self) -> None:
        for name in ["", *self.names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)


def create_server(config: ServiceConfig, app: ServiceApp) -> tuple[RunningServer, int]:
    """Build (not start) the gRPC server for ``app``; returns it and its bound port."""
    size = config.grpc.max_message_bytes
    options = [("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size),
               ("grpc.so_reuseport", 0),
               # a client that froze without closing its connection is found by pings, and its streams end
               ("grpc.keepalive_time_ms", 30_000), ("grpc.keepalive_timeout_ms", 10_000)]
    if config.grpc.max_connection_age_s > 0:
        # clients balance per call (common.grpc_channel); an aged connection makes them re-resolve
        options += [("grpc.max_connection_age_ms", int(config.grpc.max_connection_age_s * 1000)),
                    ("grpc.max_connection_age_grace_ms", MAX_CALL_MS)]
    tls = mutual_tls(config.tls)
    interceptors: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor()]
    control_auth = getattr(app, "control_auth", None)
    if control_auth is not None:
        guarded, token = control_auth()
        if token:   # after the metrics one, so refused calls are counted (UNAUTHENTICATED)
            interceptors.append(BearerTokenInterceptor(token, guarded))
    server = grpc.aio.server(interceptors=interceptors, options=options)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = app.register(server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = _address(config.grpc.host, config.grpc.port)
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, grpc_server_credentials(tls))
    if port == 0:
        raise OSError(f"cannot bind gRPC port {address}")
    health_server, health_port = None, 0
    if tls is not None and config.tls.health_port:
        # Its own server: nothing but health can be reached without a certificate, whatever the method.
        health_server = grpc.aio.server(options=options)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        health_address = _address(config.grpc.host, config.tls.health_port)
        health_port = health_server.add_insecure_port(health_address)
        if health_port == 0:
            raise OSError(f"cannot bind the plaintext health port {health_address}")
    return RunningServer(server, port, health_servicer, names, health_server, health_port), port


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _start_metrics(config: ServiceConfig) -> int | None:
    """Serve /metrics when enabled; beyond loopback only with a token (ConfigError otherwise)."""
    metrics = config.metrics
    if not metrics.enabled:
        return None
    token = load_token(metrics.token, metrics.token_file, "metrics")
    require_token(metrics.host, token, "metrics", "the metrics endpoint")
    return start_metrics_server(metrics.host, metrics.port, token)


async def run_service(name: str, config: ServiceConfig, app: ServiceApp) -> int:
    """Serve ``app`` until SIGTERM/SIGINT, drain within the grace period, return the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    metrics_port = _start_metrics(config)
    running, port = create_server(config, app)
    await app.start()
    await running.start()
    await running.set_serving()
    log.info("serving", extra={"event": "serving", "grpc_port": port, "metrics_port": metrics_port,
                               "services": ",".join(running.names), "tls": config.tls.cert_file != "",
                               "health_port": running.health_port})

    watch = getattr(app, "watch", None)
    if watch is not None:
        reason = await _until_stopped_or_unhealthy(stop, watch)
        if reason is not None:
            return await _exit_unhealthy(running, app, reason)
    else:
        await stop.wait()
    grace = config.shutdown_grace_s
    deadline = loop.time() + grace
    log.info("draining", extra={"event": "draining", "grace_s": grace})
    await running.health.enter_graceful_shutdown()
    try:
        await asyncio.wait_for(app.drain(), timeout=max(0.0, deadline - loop.time()))
    except TimeoutError:
        log.warning("grace period over with work still in hand; stopping anyway")
    await running.stop(max(0.0, deadline - loop.time()))
    await app.close()
    log.info("stopped", extra={"event": "stopped"})
    return 0


async def _until_stopped_or_unhealthy(stop: asyncio.Event, watch: Callable[[], Awaitable[str]]) -> str | None:
    """Wait for a stop signal or for ``app.watch()`` to report that the app can no longer serve."""
    stopping = asyncio.create_task(stop.wait())
    watching = asyncio.create_task(watch())
    await asyncio.wait({stopping, watching}, return_when=asyncio.FIRST_COMPLETED)
    if stopping.done():
        watching.cancel()
        with contextlib.suppress(BaseException):
            await watching
        return None
    stopping.cancel()
    exc = watching.exception()
    if exc is not None:   # a watcher that crashed can no longer vouch for the app
        log.error("liveness watch failed", exc_info=exc)
        return f"liveness watch failed: {type(exc).__name__}: {exc}"
    return str(watching.result())


async def _exit_unhealthy(running: RunningServer, app: ServiceApp, reason: str) -> int:
    """Health NOT_SERVING at once (probes and load balancers see why), then exit non-zero for a restart."""
    log.error("cannot serve, exiting for a restart: %s", reason, extra={"event": "unhealthy", "reason": reason})
    for name in ["", *running.names]:
        await running.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(app.close(), UNHEALTHY_CLOSE_S)   # a dead thread may never answer a close
    await running.stop(1.0)
    return EXIT_UNHEALTHY


async def wait_serving(address: str, timeout: float, tls: TlsConfig | None = None) -> bool:
    """Poll ``grpc.health.v1`` at ``address`` (over mutual TLS with ``tls``) until it answers SERVING
    or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    async with channel(address, tls) as health_channel:
        stub = health_pb2_grpc.HealthStub(health_channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)
    return False

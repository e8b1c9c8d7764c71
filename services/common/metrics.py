"""One metrics helper: the Prometheus HTTP endpoint and metric constructors with
the ``dialtone_`` prefix. Labels must be bounded (service, method, outcome, code):
never a session id, a phone number or free text.

With a token, every request needs ``Authorization: Bearer <token>`` (401 otherwise);
``server.run_service`` refuses an endpoint bound beyond loopback without one.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from dialtone.common.auth import bearer, token_allows
from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

# Buckets (seconds) for call-path latencies: turn latency, ASR, TTS first audio, backend calls.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75,
                   1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged (one line per scrape every few seconds says nothing)."""


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _with_token(app: WsgiApp, token: str) -> WsgiApp:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token_allows(token, bearer(environ.get("HTTP_AUTHORIZATION"))):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
        return [b"a bearer token is required (Authorization: Bearer <token>)\n"]

    return guarded


def start_metrics_server(host: str, port: int, token: str = "") -> int:
    """Serve /metrics on host:port (0 = a free port) from a daemon thread, behind ``token`` when one
    is given; returns the bound port."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    app = make_wsgi_app()
    httpd = make_server(host, port, _with_token(app, token) if token else app, Server, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True).start()
    return int(httpd.server_port)


def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    return Counter(f"dialtone_{name}", doc, labelnames=tuple(labels))


def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    return Gauge(f"dialtone_{name}", doc, labelnames=tuple(labels))


def histogram(name: str, doc: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
    return Histogram(f"dialtone_{name}", doc, labelnames=tuple(labels), buckets=tuple(buckets))

"""The example backend the example dialogs call (``dialtone example-backend``; ``dialtone up``
starts it). A small real HTTP/JSON service:

- ``GET /orders/{order_id}``: 200 ``{"order_id", "status": "shipped", "eta": "Tuesday"}`` for an id of
  4 or more digits not ending in 0; 404 ``{"error": "not found"}`` otherwise;
- ``POST /appointments`` with ``{"date", "time"}``: 201 ``{"confirmation": "AB12"}``; 400 without them;
- ``POST /refills`` with ``{"rx": 7 digits, "pickup": "YYYY-MM-DD"}``: 201 ``{"rx", "pickup", "ready": true}``;
  400 otherwise;
- ``GET /health``: 200;
- ``GET /stats``: what it was asked so far (``RequestCounts.snapshot``): how many requests came with
  each ``Idempotency-Key`` and for each method and path, for load and soak checks that every backend
  call ran once (``python -m bench.soak``). Read-only.

Written on the standard library's threaded ``http.server``: it is a demo peer with three
routes, and needs no web framework in the runtime's dependencies.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from dialtone.common.logging import setup_logging

log = logging.getLogger(__name__)

_ORDER = re.compile(r"^/orders/([^/]+)$")
MAX_BODY = 64 * 1024
MAX_TRACKED = 200_000   # distinct keys (and requests) remembered; past that, new ones are only counted
MAX_LISTED = 100        # repeated keys (and requests) listed by /stats
NOT_COUNTED = ("/health", "/stats")


class RequestCounts:
    """Requests per Idempotency-Key and per "METHOD /path", thread-safe and bounded (``MAX_TRACKED``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.without_key = 0
        self.untracked = 0
        self.by_key: collections.Counter[str] = collections.Counter()
        self.by_request: collections.Counter[str] = collections.Counter()

    def record(self, method: str, path: str, key: str | None) -> None:
        request = f"{method} {path[:200]}"
        with self._lock:
            self.requests += 1
            if not key:
                self.without_key += 1
            for counter, name in ((self.by_key, key[:200] if key else ""), (self.by_request, request)):
                if not name:
                    continue
                if name in counter or len(counter) < MAX_TRACKED:
                    counter[name] += 1
                else:
                    self.untracked += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            repeated_keys = {k: n for k, n in self.by_key.items() if n > 1}
            repeated_requests = {r: n for r, n in self.by_request.items() if n > 1}
            return {
                "requests": self.requests, "keys": len(self.by_key), "without_key": self.without_key,
                "untracked": self.untracked,
                "repeated_keys_count": len(repeated_keys),
                "repeated_keys": dict(collections.Counter(repeated_keys).most_common(MAX_LISTED)),
                "repeated_requests_count": len(repeated_requests),
                "repeated_requests": dict(collections.Counter(repeated_requests).most_common(MAX_LISTED)),
            }


class ExampleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, ExampleHandler)
        self.counts = RequestCounts()


def order_status(order_id: str) -> tuple[int, dict[str, Any]]:
    if order_id.isdigit() and len(order_id) >= 4 and not order_id.endswith("0"):
        return 200, {"order_id": order_id, "status": "shipped", "eta": "Tuesday"}
    return 404, {"error": "not found"}


def book_appointment(body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k] for k in ("date", "time")):
        return 400, {"error": "date and time are required"}
    return 201, {"confirmation": "AB12"}


_RX = re.compile(r"^[1-9][0-9]{6}$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def request_refill(body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not _RX.match(str(body.get("rx", ""))) \
            or not _DAY.match(str(body.get("pickup", ""))):
        return 400, {"error": "rx (7 digits) and pickup (YYYY-MM-DD) are required"}
    return 201, {"rx": body["rx"], "pickup": body["pickup"], "ready": True}


POST_ROUTES = {"/appointments": book_appointment, "/refills": request_refill}


class ExampleHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dialtone-example-backend"
    # Headers and body are separate writes: without TCP_NODELAY, Nagle and delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _count(self, path: str) -> None:
        if path not in NOT_COUNTED:
            cast(ExampleServer, self.server).counts.record(self.command, path, self.headers.get("Idempotency-Key"))

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        self._count(path)
        match = _ORDER.match(path)
        if match:
            self._answer(*order_status(match.group(1)))
        elif path == "/health":
            self._answer(200, {"status": "ok"})
        elif path == "/stats":
            self._answer(200, cast(ExampleServer, self.server).counts.snapshot())
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        self._count(path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, {"error": "body too large"})
            return
        raw = self.rfile.read(length) if length else b""
        route = POST_ROUTES.get(path)
        if route is None:
            self._answer(404, {"error": "not found"})
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._answer(400, {"error": "body is not JSON"})
            return
        self._answer(*route(body))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_server(host: str, port: int) -> ExampleServer:
    return ExampleServer((host, port))


def serve(host: str, port: int) -> int:
    setup_logging("example-backend", "INFO", "json")
    try:
        server = make_server(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        return 1

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() waits for serve_forever

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("example backend listening on http://%s:%d", host, server.server_address[1],
             extra={"event": "serving", "port": server.server_address[1]})
    with server:
        server.serve_forever(poll_interval=0.2)
    log.info("example backend stopped", extra={"event": "stopped"})
    return 0

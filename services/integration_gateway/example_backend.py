"""The example backend the example dialogs call (``dialtone example-backend``; ``dialtone up``
starts it). A small real HTTP/JSON service:

- ``GET /orders/{order_id}``: 200 ``{"order_id", "status": "shipped", "eta": "Tuesday"}`` for an id of
  4 or more digits not ending in 0; 404 ``{"error": "not found"}`` otherwise;
- ``POST /appointments`` with ``{"date", "time"}``: 201 ``{"confirmation": "AB12"}``; 400 without them;
- ``GET /health``: 200.

Written on the standard library's threaded ``http.server``: it is a demo peer with two
routes, and needs no web framework in the runtime's dependencies.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from dialtone.common.logging import setup_logging

log = logging.getLogger(__name__)

_ORDER = re.compile(r"^/orders/([^/]+)$")
MAX_BODY = 64 * 1024


def order_status(order_id: str) -> tuple[int, dict[str, Any]]:
    if order_id.isdigit() and len(order_id) >= 4 and not order_id.endswith("0"):
        return 200, {"order_id": order_id, "status": "shipped", "eta": "Tuesday"}
    return 404, {"error": "not found"}


def book_appointment(body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k] for k in ("date", "time")):
        return 400, {"error": "date and time are required"}
    return 201, {"confirmation": "AB12"}


class ExampleHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dialtone-example-backend"
    # Headers and body are separate writes: without TCP_NODELAY, Nagle and delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        match = _ORDER.match(path)
        if match:
            self._answer(*order_status(match.group(1)))
        elif path == "/health":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413, {"error": "body too large"})
            return
        raw = self.rfile.read(length) if length else b""
        if path != "/appointments":
            self._answer(404, {"error": "not found"})
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._answer(400, {"error": "body is not JSON"})
            return
        self._answer(*book_appointment(body))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), ExampleHandler)
    server.daemon_threads = True
    return server


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

"""A real HTTP backend on loopback for the gateway's tests: a threaded ``http.server``
whose answers are scripted per path, which records every request it gets, and
which can serve an OAuth2 token endpoint and TLS with required client certificates."""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: object = None  # JSON; None = echo the request
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay_s: float = 0.0


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str
    at: float  # time.monotonic() on arrival


class Backend:
    """Scripted answers: ``script(path, [Reply, ...])`` are used once each, in order, then 200 echo."""

    def __init__(self, tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        self.requests: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.tokens_issued: list[str] = []
        self.valid_tokens: set[str] = set()
        self.token_expires_in = 3600
        self.require_bearer_prefix = "/secure"
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without TCP_NODELAY, Nagle and delayed ACK add ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                return None

            def _handle(self) -> None:
                backend._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Backend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def script(self, path: str, replies: list[Reply]) -> None:
        with self._lock:
            self._scripts[path] = list(replies)

    def seen(self, path_prefix: str = "") -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def revoke_tokens(self) -> None:
        with self._lock:
            self.valid_tokens.clear()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        seen = Seen(handler.command, parts.path, parse_qs(parts.query), dict(handler.headers.items()), body,
                    time.monotonic())
        with self._lock:
            self.requests.append(seen)
            queue = self._scripts.get(parts.path)
            reply = queue.pop(0) if queue else Reply()
        if parts.path == "/token":
            reply = self._token_reply(body, seen.headers.get("Authorization", ""))
        elif parts.path.startswith(self.require_bearer_prefix):
            token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
            with self._lock:
                valid = token in self.valid_tokens
            if not valid:
                reply = Reply(401, {"error": "invalid token"})
        if reply.delay_s:
            time.sleep(reply.delay_s)
        payload = reply.body if reply.body is not None else {
            "method": seen.method, "path": seen.path, "query": seen.query, "body": body,
            "idempotency_key": seen.headers.get("Idempotency-Key", "")}
        data = json.dumps(payload).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway gave up (timeout test); nothing to answer

    def _token_reply(self, body: str, authorization: str) -> Reply:
        form = parse_qs(body)
        basic = "Basic " + base64.b64encode(b"dialtone:cs-123").decode()
        credentials_ok = form.get("client_secret") == ["cs-123"] or authorization == basic
        if form.get("grant_type") != ["client_credentials"] or not credentials_ok:
            return Reply(401, {"error": "invalid_client"})
        with self._lock:
            token = f"tok-{len(self.tokens_issued) + 1}"
            self.tokens_issued.append(token)
            self.valid_tokens.add(token)
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_expires_in})

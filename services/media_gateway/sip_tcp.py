"""SIP over TCP under sippy (sippy 2.5 has UDP, WS and WSS only).

A listening socket and one reader thread per connection, mirroring the UDP server: each
connection is framed into messages (header block + Content-Length body, RFC 3261 §18.3),
every message goes through the same ``SipGuard``, and passed ones enter sippy's transaction
manager with the connection as its "server", so responses go back on that connection.
Requests we start inside a TCP dialog (BYE, REFER) reuse the latest connection from the
peer's address (RFC 5923 style) -- ``TcpListener.server_for``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from dialtone.media_gateway.sip_guard import SipGuard, Verdict
from sippy.Core.EventDispatcher import ED2
from sippy.Network_server import Network_server, Network_server_opts, Remote_address
from sippy.SipConf import MyAddress
from sippy.Time.MonoTime import MonoTime

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
MAX_MESSAGE = 60_000
IDLE_TIMEOUT_S = 300.0


class TcpConnection(Network_server):  # type: ignore[misc]
    """One accepted connection, as sippy sees a transport: send_to writes on it."""

    transport = "tcp"

    def __init__(self, sock: socket.socket, peer: tuple[str, int], local: tuple[str, int], advertised: str,
                 data_callback: Callable[..., Any]) -> None:
        super().__init__(Network_server_opts(local, data_callback))
        self.sock = sock
        self.peer = peer
        self.advertised = advertised
        self._lock = threading.Lock()
        self.closed = False

    def getSIPaddr(self) -> tuple[tuple[str, int], str]:  # noqa: N802 - sippy's name
        host, port = self.uopts.laddress[0], int(self.uopts.laddress[1])
        if self.advertised:
            host = self.advertised
        elif host in ("0.0.0.0", "::"):
            host = str(MyAddress())
        return ((host, port), self.transport)

    def send_to(self, data: bytes | str, address: object, delayed: bool = False) -> None:
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            if self.closed:
                return
            try:
                self.sock.sendall(payload)
            except OSError as exc:
                log.debug("TCP send to %s failed: %s", self.peer[0], exc)

    def close(self) -> None:
        with self._lock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def join(self) -> None:
        return None

    def shutdown(self) -> None:
        self.close()


def frame_messages(buffer: bytearray) -> list[bytes] | None:
    """Cut complete messages off the front of ``buffer``; None when the stream is unusable."""
    out = []
    while True:
        while buffer[:2] == b"\r\n":        # CRLF keep-alives between messages (RFC 5626 §3.5.1)
            del buffer[:2]
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None if len(buffer) > MAX_MESSAGE else out
        length = 0
        for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                digits = value.strip()
                if not digits.isdigit() or len(digits) > 6:
                    return None             # no way to find the next message: close the connection
                length = int(digits)
        total = head_end + 4 + length
        if total > MAX_MESSAGE:
            return None
        if len(buffer) < total:
            return out
        out.append(bytes(buffer[:total]))
        del buffer[:total]


class TcpListener:
    """Accepts SIP/TCP connections and feeds their messages to sippy (see module docstring)."""

    def __init__(self, host: str, port: int, guard: SipGuard, advertised: str,
                 data_callback: Callable[..., Any]) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self._host = host
        self._guard = guard
        self._advertised = advertised
        self._callback = data_callback
        self._connections: dict[str, TcpConnection] = {}   # latest connection per peer address
        self._lock = threading.Lock()
        self._count = 0
        self._closing = False
        self.accept_thread = threading.Thread(target=self._accept, name="sip-tcp-accept", daemon=True)
        self.accept_thread.start()

    def server_for(self, host: str) -> TcpConnection | None:
        with self._lock:
            connection = self._connections.get(host.strip("[]"))
        return connection if connection is not None and not connection.closed else None

    def _accept(self) -> None:
        while not self._closing:
            try:
                sock, peer = self._sock.accept()
            except OSError:
                return
            with self._lock:
                if self._count >= MAX_CONNECTIONS or not self._guard.allowed(peer[0]):
                    sock.close()
                    continue
                self._count += 1
            sock.settimeout(IDLE_TIMEOUT_S)
            connection = TcpConnection(sock, (peer[0], peer[1]), (self._host, self.port), self._advertised,
                                       self._callback)
            with self._lock:
                self._connections[peer[0]] = connection
            threading.Thread(target=self._read, args=(connection,), name="sip-tcp-rx", daemon=True).start()

    def _read(self, connection: TcpConnection) -> None:
        buffer = bytearray()
        try:
            while not self._closing:
                try:
                    data = connection.sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                messages = frame_messages(buffer)
                if messages is None:
                    log.info("closing SIP/TCP connection from %s: unframeable stream", connection.peer[0])
                    return
                for message in messages:
                    self._dispatch(connection, message)
        finally:
            connection.close()
            with self._lock:
                self._count -= 1
                if self._connections.get(connection.peer[0]) is connection:
                    del self._connections[connection.peer[0]]

    def _dispatch(self, connection: TcpConnection, message: bytes) -> None:
        try:
            verdict, payload = self._guard.inspect(message, connection.peer[0])
        except Exception:  # noqa: BLE001 - a guard bug must not kill the connection thread
            log.exception("SIP guard raised; message dropped")
            return
        if verdict is Verdict.REPLY and isinstance(payload, bytes):
            connection.send_to(payload, connection.peer)
        elif verdict is Verdict.PASS and payload is not None:
            ED2.callFromThread(connection.handle_read, payload, Remote_address(connection.peer, "tcp"), MonoTime())

    def close(self) -> None:
        self._closing = True
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.close()

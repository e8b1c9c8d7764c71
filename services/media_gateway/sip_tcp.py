"""SIP over TCP and TLS under sippy (sippy 2.5 has UDP, WS and WSS only).

One thread (``sip-tcp``) runs a selector over the listening socket and every connection:
it accepts, reads, frames each connection's bytes into messages (header block +
Content-Length body, RFC 3261 §18.3), passes every message through the same ``SipGuard``,
hands passed ones to sippy's transaction manager with the connection as its "server", and
writes what sippy queued for the connection (``send_to`` only appends and wakes the
selector, so a peer that stops reading never blocks the sippy thread). Requests we start
inside a TCP dialog (BYE, REFER) reuse the latest connection from the peer's address (RFC
5923 style) -- ``TcpListener.server_for``.

With a TLS context the same listener serves SIP over TLS (RFC 3261 §26.2, port 5061,
``transport=tls``): the handshake runs in the selector loop (non-blocking, within the message
deadline), the certificate is reloaded when its files change, and sippy sees a transport named
"tls", so our Via says ``SIP/2.0/TLS`` and our Contact ``;transport=tls``.

What an idle or slow peer may hold (``TcpLimits``, sans-I/O): a message must arrive whole
within ``message_deadline_s`` of its first byte (a byte every 2 s no longer keeps a
connection forever); a connection with no complete message for ``idle_timeout_s`` is
closed; each source address may hold ``per_source`` connections and all sources
``total``, so one source cannot take the slots a trunk needs; at most ``max_outbox`` bytes
wait to be written to a peer before its connection is closed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from dialtone.common.logging import RateLimitedLog
from dialtone.common.metrics import counter
from dialtone.common.tls import ReloadingContext, TlsConfigError
from dialtone.media_gateway.sip_guard import SipGuard, Verdict
from sippy.Core.EventDispatcher import ED2
from sippy.Network_server import Network_server, Network_server_opts, Remote_address
from sippy.SipConf import MyAddress
from sippy.Time.MonoTime import MonoTime

log = logging.getLogger(__name__)
_LOG = RateLimitedLog(log, 10.0)

MAX_MESSAGE = 60_000
TCP_CLOSED = counter("media_sip_tcp_closed_total", "SIP/TCP connections we closed or refused, by reason", ["reason"])


@dataclasses.dataclass(frozen=True)
class TcpLimits:
    total: int = 512
    per_source: int = 32
    message_deadline_s: float = 10.0
    idle_timeout_s: float = 300.0
    max_outbox: int = 256 * 1024


class TcpConnection(Network_server):  # type: ignore[misc]
    """One accepted connection, as sippy sees a transport: ``send_to`` queues bytes for it."""

    transport = "tcp"

    def __init__(self, sock: socket.socket, peer: tuple[str, int], local: tuple[str, int], advertised: str,
                 data_callback: Callable[..., Any], wake: Callable[[TcpConnection], None], now: float,
                 max_outbox: int, transport: str = "tcp", advertised_port: int = 0) -> None:
        super().__init__(Network_server_opts(local, data_callback))
        self._max_outbox = max_outbox
        self.transport = transport
        self.handshaking = transport == "tls"
        self.connecting = False               # one we dialled, until the TCP connect completes
        self.sock = sock
        self.peer = peer
        self.advertised = advertised
        self.advertised_port = advertised_port
        self._wake = wake
        self._lock = threading.Lock()
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.closed = False
        self.overflowed = False
        self.message_started_at: float | None = None
        self.last_message_at = now

    def getSIPaddr(self) -> tuple[tuple[str, int], str]:  # noqa: N802 - sippy's name
        host, port = self.uopts.laddress[0], self.advertised_port or int(self.uopts.laddress[1])
        if self.advertised:
            host = self.advertised
        elif host in ("0.0.0.0", "::"):
            host = str(MyAddress())
        return ((host, port), self.transport)

    def send_to(self, data: bytes | str, address: object, delayed: bool = False) -> None:
        """Any thread: queue for the selector thread to write."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self._lock:
            if self.closed:
                return
            if len(self.outbox) + len(payload) > self._max_outbox:
                self.overflowed = True
            else:
                self.outbox += payload
        self._wake(self)

    def take_outbox(self) -> bytes:
        with self._lock:
            data = bytes(self.outbox)
            self.outbox.clear()
            return data

    def put_back(self, data: bytes) -> None:
        with self._lock:
            self.outbox[:0] = data

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
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


def expired(connection: TcpConnection, now: float, limits: TcpLimits) -> str | None:
    """Why ``connection`` must be closed now, or None."""
    if connection.overflowed:
        return "outbox_full"
    if connection.message_started_at is not None and now - connection.message_started_at > limits.message_deadline_s:
        return "message_deadline"
    if now - connection.last_message_at > limits.idle_timeout_s:
        return "idle"
    return None


class SourceCounts:
    """Connections per source address, within a total and a per-source cap."""

    def __init__(self, limits: TcpLimits) -> None:
        self._limits = limits or TcpLimits()
        self._by_source: dict[str, int] = {}
        self.total = 0

    def admit(self, source: str) -> str | None:
        """Count a new connection from ``source``; return why it is refused instead (nothing counted)."""
        if self.total >= self._limits.total:
            return "total_limit"
        if self._by_source.get(source, 0) >= self._limits.per_source:
            return "source_limit"
        self._by_source[source] = self._by_source.get(source, 0) + 1
        self.total += 1
        return None

    def release(self, source: str) -> None:
        left = self._by_source.get(source, 0) - 1
        if left > 0:
            self._by_source[source] = left
        else:
            self._by_source.pop(source, None)
        self.total -= 1


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
                 data_callback: Callable[..., Any], limits: TcpLimits | None = None,
                 clock: Callable[[], float] = time.monotonic, tls: ReloadingContext | None = None,
                 advertised_port: int = 0, client_tls: ReloadingContext | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)
        self._sock.setblocking(False)
        self.port = int(self._sock.getsockname()[1])
        self._host = host
        self._guard = guard
        self._advertised = advertised
        self._advertised_port = advertised_port
        self._callback = data_callback
        self._limits = limits or TcpLimits()
        self._clock = clock
        self._counts = SourceCounts(self._limits)
        self._connections: dict[str, TcpConnection] = {}   # latest connection per peer address
        self._open: set[TcpConnection] = set()
        self._lock = threading.Lock()
        self._to_flush: set[TcpConnection] = set()
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ, "accept")
        self._selector.register(self._waker_r, selectors.EVENT_READ, "wake")
        self._closing = False
        self._tls = tls
        self._client_tls = client_tls
        self._to_connect: list[TcpConnection] = []
        self.transport = "tls" if tls is not None else "tcp"
        self.accept_thread = threading.Thread(target=self._run, name=f"sip-{self.transport}", daemon=True)
        self.accept_thread.start()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def server_for(self, host: str) -> TcpConnection | None:
        with self._lock:
            connection = self._connections.get(host.strip("[]"))
        return connection if connection is not None and not connection.closed else None

    def dial(self, host: str, port: int) -> TcpConnection:
        """Any thread: a new connection to a peer we send a request to and have no connection with (RFC
        3261 §18.1.1). The connect and the TLS handshake (the peer's certificate verified against our CA
        bundle, and its name) run on the selector thread; what sippy sends meanwhile waits in the outbox,
        and a failed connect or handshake drops it (the transaction then times out, as for a lost UDP
        request)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.transport == "tls":
            if self._client_tls is None:
                sock.close()
                raise RuntimeError("SIP over TLS to a peer needs a client TLS context")
            sock = self._client_tls.context.wrap_socket(sock, server_side=False, do_handshake_on_connect=False,
                                                server_hostname=host)
        connection = TcpConnection(sock, (host, port), (self._host, self.port), self._advertised, self._callback,
                                   self._wake, self._clock(), self._limits.max_outbox, self.transport,
                                   self._advertised_port)
        connection.connecting = True
        connection.message_started_at = connection.last_message_at   # connect and handshake have the deadline
        with self._lock:
            self._connections[host] = connection
            self._to_connect.append(connection)
        self._poke()
        return connection

    def _start_connects(self) -> None:
        with self._lock:
            starting, self._to_connect = self._to_connect, []
        for connection in starting:
            self._counts.admit(connection.peer[0])    # counted like an accepted one, released on drop
            self._open.add(connection)
            code = connection.sock.connect_ex(connection.peer)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                _LOG.warning("connect", "SIP/%s connect to %s:%d failed: %s", self.transport.upper(),
                             connection.peer[0], connection.peer[1], os.strerror(code))
                self._drop(connection, "connect_failed")
                continue
            self._selector.register(connection.sock, selectors.EVENT_WRITE, connection)

    def _connected(self, connection: TcpConnection) -> None:
        code = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            _LOG.warning("connect", "SIP/%s connect to %s:%d failed: %s", self.transport.upper(),
                         connection.peer[0], connection.peer[1], os.strerror(code))
            self._drop(connection, "connect_failed")
            return
        connection.connecting = False
        if connection.handshaking:
            self._handshake(connection)
        else:
            connection.message_started_at = None
            self._write(connection)

    def _wake(self, connection: TcpConnection) -> None:
        with self._lock:
            self._to_flush.add(connection)
        self._poke()

    def _poke(self) -> None:
        try:
            self._waker_w.send(b"\0")
        except OSError:
            pass   # the pipe is full (the selector is awake already) or closed

    def _run(self) -> None:
        next_sweep = self._clock() + 1.0
        while not self._closing:
            try:
                events = self._selector.select(timeout=1.0)
            except OSError:
                return   # closed under us
            for key, mask in events:
                try:
                    self._handle(key, mask)
                except Exception as exc:  # noqa: BLE001 - one connection's failure must not end the thread
                    _LOG.log(logging.ERROR, type(exc).__name__, "SIP/TCP: %s: %.100s", type(exc).__name__, exc,
                             exc_info=True)
                    if isinstance(key.data, TcpConnection):
                        self._drop(key.data, "error")
            self._start_connects()
            self._flush_pending()
            now = self._clock()
            if now >= next_sweep:
                next_sweep = now + 1.0
                self._reload_certificate()
                for connection in list(self._open):
                    reason = expired(connection, now, self._limits)
                    if reason is not None:
                        self._drop(connection, reason)

    def _handle(self, key: selectors.SelectorKey, mask: int) -> None:
        if key.data == "accept":
            self._accept()
        elif key.data == "wake":
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while self._waker_r.recv(4096):
                    pass
        else:
            connection: TcpConnection = key.data
            if mask & selectors.EVENT_READ:
                self._read(connection)
            if mask & selectors.EVENT_WRITE and not connection.closed:
                if connection.connecting:
                    self._connected(connection)
                elif connection.handshaking:
                    self._handshake(connection)
                else:
                    self._write(connection)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, peer = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    TCP_CLOSED.labels("no_descriptors").inc()
                    _LOG.warning("accept", "SIP/TCP accept failed: %s", exc)
                return
            source = peer[0]
            refusal = "acl" if not self._guard.allowed(source) else self._counts.admit(source)
            if refusal is not None:
                TCP_CLOSED.labels(refusal).inc()
                _LOG.warning(refusal, "SIP/TCP connection from %s refused: %s", source, refusal)
                sock.close()
                continue
            sock.setblocking(False)
            if self._tls is not None:
                sock = self._tls.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            connection = TcpConnection(sock, (source, peer[1]), (self._host, self.port), self._advertised,
                                       self._callback, self._wake, self._clock(), self._limits.max_outbox,
                                       self.transport, self._advertised_port)
            if connection.handshaking:
                connection.message_started_at = connection.last_message_at   # the handshake has the deadline too
            self._open.add(connection)
            with self._lock:
                self._connections[source] = connection
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def _handshake(self, connection: TcpConnection) -> bool:
        """Advance a TLS handshake; True once it is done."""
        assert isinstance(connection.sock, ssl.SSLSocket)
        try:
            connection.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(connection.sock, selectors.EVENT_READ, connection)
            return False
        except ssl.SSLWantWriteError:
            self._selector.modify(connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
            return False
        except (ssl.SSLError, OSError) as exc:
            _LOG.warning("tls_handshake", "SIP/TLS handshake with %s failed: %.120s", connection.peer[0], exc)
            self._drop(connection, "tls_handshake")
            return False
        connection.handshaking = False
        connection.message_started_at = None
        self._selector.modify(connection.sock, selectors.EVENT_READ, connection)
        if connection.outbox:
            self._write(connection)    # a connection we dialled: the request queued while it was set up
        return True

    def _receive(self, connection: TcpConnection) -> bytes | None:
        """What the socket has (TLS: decrypted, including records already buffered); None: nothing yet."""
        sock = connection.sock
        try:
            data = sock.recv(65536)
            if isinstance(sock, ssl.SSLSocket):
                while data and sock.pending():
                    data += sock.recv(sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except OSError:   # ssl.SSLError included
            self._drop(connection, "reset")
            return None
        if not data:
            self._drop(connection, "peer_closed")
            return None
        return data

    def _read(self, connection: TcpConnection) -> None:
        if connection.handshaking and not self._handshake(connection):
            return
        data = self._receive(connection)
        if data is None:
            return
        connection.inbox += data
        messages = frame_messages(connection.inbox)
        if messages is None:
            self._drop(connection, "unframeable")
            return
        now = self._clock()
        if messages:
            connection.last_message_at = now
            connection.message_started_at = None
        if connection.inbox and connection.message_started_at is None:
            connection.message_started_at = now
        for message in messages:
            self._dispatch(connection, message)

    def _flush_pending(self) -> None:
        with self._lock:
            pending, self._to_flush = self._to_flush, set()
        for connection in pending:
            if not connection.closed and not connection.handshaking and not connection.connecting:
                self._write(connection)

    def _write(self, connection: TcpConnection) -> None:
        data = connection.take_outbox()
        sent = 0
        if data:
            try:
                sent = connection.sock.send(data)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                sent = 0
            except OSError:
                self._drop(connection, "reset")
                return
        if sent < len(data):
            connection.put_back(data[sent:])
            self._selector.modify(connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
        else:
            self._selector.modify(connection.sock, selectors.EVENT_READ, connection)

    def _drop(self, connection: TcpConnection, reason: str) -> None:
        if connection not in self._open:
            return
        self._open.discard(connection)
        if reason not in ("peer_closed", "reset"):
            TCP_CLOSED.labels(reason).inc()
        try:
            self._selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass
        connection.close()
        self._counts.release(connection.peer[0])
        with self._lock:
            if self._connections.get(connection.peer[0]) is connection:
                del self._connections[connection.peer[0]]
            self._to_flush.discard(connection)

    def _dispatch(self, connection: TcpConnection, message: bytes) -> None:
        verdict, payload = self._guard.inspect(message, connection.peer[0], connection.peer[1])
        if verdict is Verdict.REPLY and isinstance(payload, bytes):
            connection.send_to(payload, connection.peer)
        elif verdict is Verdict.PASS and payload is not None:
            ED2.callFromThread(connection.handle_read, payload, Remote_address(connection.peer, self.transport),
                               MonoTime())

    def _reload_certificate(self) -> None:
        for context in (self._tls, self._client_tls):     # what we serve, and what we dial with
            if context is None:
                continue
            try:
                if context.maybe_reload():
                    log.info("SIP/TLS certificate reloaded from %s", context.files.cert_file,
                             extra={"event": "tls_reloaded"})
            except TlsConfigError as exc:
                _LOG.warning("tls_reload", "SIP/TLS certificate not reloaded, keeping the old one: %s", exc)

    def close(self) -> None:
        self._closing = True
        self._poke()
        self.accept_thread.join(2.0)
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        for sock in (self._sock, self._waker_r, self._waker_w):
            try:
                sock.close()
            except OSError:
                pass
        self._selector.close()



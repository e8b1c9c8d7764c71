"""The UDP socket under sippy, with our guard in front of its parser.

sippy's own ``Udp_server`` reads at most 8,192 bytes of a datagram (a longer one arrives
cut and is then misparsed). This server reads whole datagrams (64 KiB), asks the guard
(``sip_guard.SipGuard``) what to do with each one -- pass it to sippy, answer it
ourselves, or drop it -- and only then hands it to sippy's transaction manager. The asyncio
loop reads the socket (sippy runs on the loop: ``sip_bridge``). A send goes straight out when the
socket takes it; otherwise ``SipSender``, a thread that drains sippy's send queue like sippy's own
``AsyncSender`` but survives any error in one send: AsyncSender died on the first
exception it did not expect (``OverflowError`` for a Via port of 70000), and every answer
after that waited in a queue nobody drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import threading
import time
from typing import Any

from dialtone.common.logging import RateLimitedLog
from dialtone.common.metrics import counter
from dialtone.media_gateway.sip_guard import SipGuard, Verdict
from sippy.Core.EventDispatcher import ED2
from sippy.Network_server import Remote_address
from sippy.SipConf import MyAddress
from sippy.Time.MonoTime import MonoTime
from sippy.Udp_server import Udp_server, Udp_server_opts

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
_READ_BATCH = 64
SEND_ERRORS = counter("media_sip_send_errors_total", "SIP messages that could not be sent, by error kind", ["kind"])
_SEND_LOG = RateLimitedLog(log, 10.0)
_RECEIVE_LOG = RateLimitedLog(log, 10.0)
_BUSY = (errno.EWOULDBLOCK, errno.ENOBUFS, errno.EAGAIN)


def _is_ipv4(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return host.count(".") == 3   # inet_aton also takes '127.1'; sendto would take it as a name


class SipSender(threading.Thread):
    """Drains a sippy server's send queue (see module docstring); one failed send is counted and
    logged (rate-limited), never fatal to the thread."""

    def __init__(self, server: Any) -> None:
        super().__init__(name="sip-udp-tx", daemon=True)
        self._server = server
        self.start()

    def run(self) -> None:
        queue = self._server.sendqueue
        while True:
            item = queue.get()
            if item is None:
                queue.put(None)   # shutdown: relay it to any other sender, as sippy's does
                return
            data, address = item
            try:
                self._send(data, address)
            except Exception as exc:  # noqa: BLE001 - one bad destination must not stop every later answer
                kind = type(exc).__name__
                SEND_ERRORS.labels(kind).inc()
                _SEND_LOG.warning(kind, "could not send a SIP message to %.60r: %s: %.100s", address, kind, exc)

    def _send(self, data: bytes, address: tuple[Any, ...]) -> None:
        family = self._server.uopts.family
        host = str(address[0]).strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:   # a host name from a Contact or Route: resolve it as sippy does
            host = socket.getaddrinfo(host, None, family)[0][4][0]
        target = (host, int(address[1])) if family == socket.AF_INET else (host, int(address[1]), 0, 0)
        for _ in range(20):
            try:
                if self._server.skt.sendto(data, target) == len(data):
                    return
            except OSError as exc:
                if exc.errno not in _BUSY:
                    raise
            time.sleep(0.01)
        raise BlockingIOError(errno.ENOBUFS, "socket send buffer full for 200 ms")


class GuardedUdpServer(Udp_server):
    """A sippy ``Network_server`` whose receive path is ours (see module docstring)."""

    def __init__(self, global_config: dict[str, Any], uopts: Udp_server_opts) -> None:  # noqa: D107
        # Deliberately not calling Udp_server.__init__: it starts sippy's 8 KiB receivers.
        super(Udp_server, self).__init__(uopts)
        self.guard: SipGuard = global_config["_dialtone_guard"]
        self.advertised: str = global_config.get("_dialtone_advertised", "")
        self.advertised_port: int = global_config.get("_dialtone_advertised_port", 0)
        self.skt = socket.socket(self.uopts.family, socket.SOCK_DGRAM)
        self.skt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        laddress = self.uopts.laddress
        self.skt.bind((laddress[0], int(laddress[1])))
        if int(laddress[1]) == 0:
            self.uopts.laddress = self.skt.getsockname()[:2]
        self.skt.setblocking(False)
        self.closing: threading.Thread | None = None   # set by join() while the sender still sends
        self.asenders = [SipSender(self)]
        self.areceivers = []
        # sippy runs on the asyncio loop (sip_bridge): the loop reads the socket too, no thread hands over.
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.skt.fileno(), self._receive)

    def _receive(self) -> None:
        """The socket is readable: up to ``_READ_BATCH`` datagrams, so RTP timers wait at most that long."""
        for _ in range(_READ_BATCH):
            try:
                data, address = self.skt.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:   # an ICMP port unreachable for something we sent
                    continue
                # The socket is broken (closed under us): a level-triggered reader would spin on it.
                # Reading stops; the self-probe (sip_liveness) then finds SIP deaf and the process restarts.
                log.error("SIP socket read failed, no longer reading it: %s", exc)
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self.skt.fileno())
                return
            try:
                self._dispatch(data, address)
            except Exception as exc:  # noqa: BLE001 - a guard bug must not stop the reading
                _RECEIVE_LOG.log(logging.ERROR, type(exc).__name__, "SIP datagram dropped: %s: %.100s",
                                 type(exc).__name__, exc, exc_info=True)

    def _dispatch(self, data: bytes, address: tuple[Any, ...]) -> None:
        verdict, payload = self.guard.inspect(data, address[0], address[1])
        if verdict is Verdict.REPLY and isinstance(payload, bytes):
            self._send_raw(payload, address)
            return
        if verdict is not Verdict.PASS or payload is None:
            return
        if self.uopts.family == socket.AF_INET6:
            address = (f"[{address[0]}]", address[1])
        ED2.callFromThread(self.handle_read, payload, Remote_address(address, self.transport), MonoTime())

    def send_to(self, data: bytes | str, address: Any, delayed: bool = False) -> None:
        """sippy's send: straight from its thread when the socket takes the datagram at once (no wake-up
        of the sender thread per message); names to resolve and a full buffer go to the sender."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        host, port = str(address[0]).strip("[]"), address[1]
        if self.uopts.family == socket.AF_INET and _is_ipv4(host) and isinstance(port, int) and 0 < port < 65536:
            try:
                if self.skt.sendto(payload, socket.MSG_DONTWAIT, (host, port)) == len(payload):
                    return
            except BlockingIOError:
                pass
            except OSError as exc:
                SEND_ERRORS.labels(type(exc).__name__).inc()
                _SEND_LOG.warning(type(exc).__name__, "could not send a SIP message to %.60r: %s", address, exc)
                return
        self.sendqueue.put((payload, address))

    def getSIPaddr(self) -> tuple[tuple[str, int], str]:  # noqa: N802 - sippy's name
        """The host:port we write in Via and Contact: the advertised address and port (NAT), else the
        bound ones; never a wildcard, which a peer could not send to."""
        host, port = self.uopts.laddress[0], self.advertised_port or int(self.uopts.laddress[1])
        if self.advertised:
            host = self.advertised
        elif host in ("0.0.0.0", "::"):
            host = str(MyAddress())
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return ((host, port), self.transport)

    def _send_raw(self, data: bytes, address: tuple[Any, ...]) -> None:
        try:
            self.skt.sendto(data, address)
        except OSError as exc:
            SEND_ERRORS.labels(type(exc).__name__).inc()
            _SEND_LOG.warning("guard_reply", "could not send a guard reply to %s: %s", address[0], exc)

    def join(self) -> None:
        """sippy's shutdown, on the loop: stop reading; close the socket once the sender has sent what it
        holds. A sender that does not finish at once (stalled, or a name to resolve) is waited for off
        the loop, so health and the rest of the shutdown go on meanwhile."""
        with contextlib.suppress(Exception):   # the loop may be closing already
            self._loop.remove_reader(self.skt.fileno())
        senders, sock = self.asenders, self.skt
        self.asenders = []
        for worker in senders:
            worker.join(0.05)
        if not any(worker.is_alive() for worker in senders):
            sock.close()
            return

        def close_when_sent() -> None:
            for worker in senders:
                worker.join(2.0)
            sock.close()

        self.closing = threading.Thread(target=close_when_sent, name="sip-udp-close", daemon=True)
        self.closing.start()

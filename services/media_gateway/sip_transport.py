"""The UDP socket under sippy, with our guard in front of its parser.

sippy's own ``Udp_server`` reads at most 8,192 bytes of a datagram (a longer one arrives
cut and is then misparsed). This server reads whole datagrams (64 KiB), asks the guard
(``sip_guard.SipGuard``) what to do with each one -- pass it to sippy, answer it
ourselves, or drop it -- and only then hands it to sippy's transaction manager on the
sippy thread. Sending stays sippy's: its ``AsyncSender`` thread drains our send queue.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from typing import Any

from dialtone.media_gateway.sip_guard import SipGuard, Verdict
from sippy.Core.EventDispatcher import ED2
from sippy.Network_server import Remote_address
from sippy.SipConf import MyAddress
from sippy.Time.MonoTime import MonoTime
from sippy.Udp_server import AsyncSender, Udp_server, Udp_server_opts

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535


class GuardedUdpServer(Udp_server):
    """A sippy ``Network_server`` whose receive path is ours (see module docstring)."""

    def __init__(self, global_config: dict[str, Any], uopts: Udp_server_opts) -> None:  # noqa: D107
        # Deliberately not calling Udp_server.__init__: it starts sippy's 8 KiB receivers.
        super(Udp_server, self).__init__(uopts)
        self.guard: SipGuard = global_config["_dialtone_guard"]
        self.advertised: str = global_config.get("_dialtone_advertised", "")
        self.skt = socket.socket(self.uopts.family, socket.SOCK_DGRAM)
        self.skt.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        laddress = self.uopts.laddress
        self.skt.bind((laddress[0], int(laddress[1])))
        if int(laddress[1]) == 0:
            self.uopts.laddress = self.skt.getsockname()[:2]
        self.asenders = [AsyncSender(self)]
        self.areceivers = [threading.Thread(target=self._receive, name="sip-udp-rx", daemon=True)]
        self.areceivers[0].start()

    def _receive(self) -> None:
        while True:
            try:
                data, address = self.skt.recvfrom(MAX_DATAGRAM)
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.EAGAIN):
                    continue
                return  # socket shut down
            if not data and address is None:
                return
            try:
                verdict, payload = self.guard.inspect(data, address[0])
            except Exception:  # noqa: BLE001 - a guard bug must not kill the receive thread
                log.exception("SIP guard raised; datagram dropped")
                continue
            if verdict is Verdict.REPLY and isinstance(payload, bytes):
                self._send_raw(payload, address)
                continue
            if verdict is not Verdict.PASS or payload is None:
                continue
            if self.uopts.family == socket.AF_INET6:
                address = (f"[{address[0]}]", address[1])
            ED2.callFromThread(self.handle_read, payload, Remote_address(address, self.transport), MonoTime())

    def getSIPaddr(self) -> tuple[tuple[str, int], str]:  # noqa: N802 - sippy's name
        """The host:port we write in Via and Contact: the advertised address (NAT), else the bound one;
        never a wildcard, which a peer could not send to."""
        host, port = self.uopts.laddress[0], int(self.uopts.laddress[1])
        if self.advertised:
            host = self.advertised
        elif host in ("0.0.0.0", "::"):
            host = str(MyAddress())
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return ((host, port), self.transport)

    def _send_raw(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self.skt.sendto(data, address)
        except OSError as exc:
            log.debug("could not send guard reply to %s: %s", address[0], exc)

    def join(self) -> None:
        for worker in self.asenders:
            worker.join(2.0)
        self.skt.close()
        for worker in self.areceivers:
            worker.join(2.0)
        self.asenders = []
        self.areceivers = []

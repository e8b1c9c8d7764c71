"""Channels to another service: plaintext, or mutual TLS when the caller's ``tls`` section names a
certificate. Every client of another service (and the CLI, and the health wait) makes its channel
here, so plaintext or mTLS is one setting.

Calls are balanced per call, not per connection: every channel runs gRPC's ``round_robin`` policy,
so each new stream goes to the next ready backend of its target. A target is ``host:port``, a
``dns:///name:port`` (a Kubernetes headless Service: one address per pod, re-resolved when a
server's ``max_connection_age`` closes a connection, so a pod the HPA adds gets calls within about
``max_connection_age`` plus ``DNS_RERESOLVE_MS``), or several
IP ``host:port`` joined by commas, which ``balanced_target`` makes one ``ipv4:``/``ipv6:`` target.
kube-proxy balances TCP connections only, and one long-lived channel is one connection: without
this, replicas an HPA added would receive nothing from clients already connected.

``ChannelPool`` keeps one channel per address for a long-lived client and makes a new one, with
the new certificate, once the files change (checked at most once a second, a stat of each file).
A channel made before the change stays open for the streams already on it and is closed with the
pool (certificates change every few weeks, so few pile up); new calls get the new channel.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Sequence
from typing import Any

import grpc
from dialtone.common.config import TlsConfig
from dialtone.common.tls import TlsConfigError, TlsFiles, grpc_channel_credentials, mutual_tls

Options = Sequence[tuple[str, Any]]

STAMP_CHECK_S = 1.0


ROUND_ROBIN = ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]}))
# A server's GOAWAY (max_connection_age) makes the channel re-resolve its dns:/// name, but gRPC spaces
# resolutions 30 s apart by default: a pod the HPA just added would wait that long again for calls.
DNS_RERESOLVE_MS = 5_000


def balanced_target(addresses: str) -> str:
    """One gRPC target for a comma-separated list: IP literals become ``ipv4:a:p,b:p`` (or ``ipv6:``),
    balanced per call by round_robin; a single address or name is returned as given. ValueError for a
    list mixing names, or IPv4 and IPv6 (give a ``dns:///`` name instead)."""
    items = [item.strip() for item in addresses.split(",") if item.strip()]
    if not items:
        raise ValueError("no address given")
    if len(items) == 1:
        return items[0]
    families = set()
    for item in items:
        host = item.rsplit(":", 1)[0].strip("[]")
        try:
            families.add(ipaddress.ip_address(host).version)
        except ValueError:
            raise ValueError(f"{item!r}: a list of replicas must be IP addresses; "
                             "for names use one dns:///name:port (a headless Service)") from None
    if len(families) > 1:
        raise ValueError("a list of replicas must be all IPv4 or all IPv6")
    return ("ipv4:" if families == {4} else "ipv6:") + ",".join(items)


def _with_balancing(options: Options) -> list[tuple[str, Any]]:
    given = list(options)
    if not any(name == "grpc.service_config" or name == "grpc.lb_policy_name" for name, _ in given):
        given.append(ROUND_ROBIN)
    if not any(name == "grpc.dns_min_time_between_resolutions_ms" for name, _ in given):
        given.append(("grpc.dns_min_time_between_resolutions_ms", DNS_RERESOLVE_MS))
    return given


def _credentials(files: TlsFiles | None) -> grpc.ChannelCredentials | None:
    return grpc_channel_credentials(files) if files is not None else None


def channel(address: str, tls: TlsConfig | None = None, options: Options = ()) -> grpc.aio.Channel:
    """An asyncio channel to ``address``; mutual TLS when ``tls`` names a certificate (ConfigError if it is wrong)."""
    credentials = _credentials(mutual_tls(tls) if tls is not None else None)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=_with_balancing(options))
    return grpc.aio.secure_channel(address, credentials, options=_with_balancing(options))


def blocking_channel(address: str, tls: TlsConfig | None = None, options: Options = ()) -> grpc.Channel:
    """The same for synchronous callers (CLI commands)."""
    credentials = _credentials(mutual_tls(tls) if tls is not None else None)
    if credentials is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, credentials, options=list(options))


class ChannelPool:
    """One asyncio channel per address, shared by every call to it (HTTP/2 multiplexes the calls; a
    connection and handshake per call would cost more than the call setup), remade when the TLS files change."""

    def __init__(self, tls: TlsConfig | None = None, options: Options = ()) -> None:
        self._files = mutual_tls(tls) if tls is not None else None
        self._options = _with_balancing(options)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._retired: list[grpc.aio.Channel] = []
        self._credentials = _credentials(self._files)
        self._stamp = self._files.stamp() if self._files is not None else ()
        self._checked_at = time.monotonic()

    def get(self, address: str) -> grpc.aio.Channel:
        self._maybe_reload()
        found = self._channels.get(address)
        if found is None:
            if self._credentials is None:
                found = grpc.aio.insecure_channel(address, options=self._options)
            else:
                found = grpc.aio.secure_channel(address, self._credentials, options=self._options)
            self._channels[address] = found
        return found

    def _maybe_reload(self) -> None:
        if self._files is None or time.monotonic() - self._checked_at < STAMP_CHECK_S:
            return
        self._checked_at = time.monotonic()
        stamp = self._files.stamp()
        if stamp == self._stamp:
            return
        try:
            credentials = grpc_channel_credentials(self._files)
        except TlsConfigError:   # a half-written pair: the current channels stay until it is whole
            return
        self._stamp, self._credentials = stamp, credentials
        self._retired.extend(self._channels.values())
        self._channels = {}

    async def close(self) -> None:
        channels = [*self._channels.values(), *self._retired]
        self._channels, self._retired = {}, []
        for item in channels:
            await item.close()

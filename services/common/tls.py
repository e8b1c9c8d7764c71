"""Certificates from files, reloaded when the files change: the one place TLS material is read.

A deployment mounts a certificate, its key and a CA bundle as files (Kubernetes Secrets,
cert-manager, or `dialtone up --secure`'s development CA). ``TlsFiles`` names them and tells,
cheaply, whether any of them changed since the last look (mtime and size), so a server can
load the new pair into its live ``ssl.SSLContext`` without a restart: connections made after
the reload get the new certificate, open ones keep theirs.
"""

from __future__ import annotations

import dataclasses
import os
import ssl


class TlsConfigError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""          # CA bundle that peers' certificates must chain to ("" = system CAs / none)

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    def stamp(self) -> tuple[tuple[int, int], ...]:
        """What ``changed`` compares: (mtime_ns, size) of each file, (0, 0) for a missing one."""
        stamps = []
        for path in (self.cert_file, self.key_file, self.ca_file):
            try:
                info = os.stat(path) if path else None
            except OSError:
                info = None
            stamps.append((info.st_mtime_ns, info.st_size) if info is not None else (0, 0))
        return tuple(stamps)

    def check(self) -> None:
        """Raise TlsConfigError unless the certificate and key are given together and readable."""
        if bool(self.cert_file) != bool(self.key_file):
            raise TlsConfigError("a TLS certificate needs its key (and the key its certificate)")
        for path in (self.cert_file, self.key_file, self.ca_file):
            if path and not os.access(path, os.R_OK):
                raise TlsConfigError(f"cannot read {path}")

    def load_into(self, context: ssl.SSLContext) -> None:
        """(Re)load the certificate chain and CA bundle into a live context."""
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.ca_file:
                context.load_verify_locations(self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"TLS files {self.cert_file}, {self.key_file}: {exc}") from None

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        """A server context (TLS 1.2+) with our certificate; with ``require_client_cert`` peers must
        present a certificate from ``ca_file``."""
        self.check()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.load_into(context)
        if require_client_cert:
            if not self.ca_file:
                raise TlsConfigError("client certificates can only be required with a CA file")
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class ReloadingContext:
    """A server ``SSLContext`` that reloads its files when they change (call ``maybe_reload`` now and then)."""

    def __init__(self, files: TlsFiles, require_client_cert: bool = False) -> None:
        self.files = files
        self.context = files.server_context(require_client_cert)
        self._stamp = files.stamp()
        self.reloads = 0

    def maybe_reload(self) -> bool:
        """True when the files changed and were loaded; a half-written pair keeps the old one (TlsConfigError)."""
        stamp = self.files.stamp()
        if stamp == self._stamp:
            return False
        self.files.load_into(self.context)
        self._stamp = stamp
        self.reloads += 1
        return True

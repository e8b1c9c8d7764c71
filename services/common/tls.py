"""Certificates from files, reloaded when the files change: the one place TLS material is read.

A deployment mounts a certificate, its key and a CA bundle as files (Kubernetes Secrets,
cert-manager, or `dialtone up --secure`'s development CA). ``TlsFiles`` names them and tells,
cheaply, whether any of them changed since the last look (mtime and size), so a server can
load the new pair into its live ``ssl.SSLContext`` without a restart: connections made after
the reload get the new certificate, open ones keep theirs.

The gRPC hops between the services use the same files through ``mutual_tls`` (a service's
``tls`` section): ``grpc_server_credentials`` asks every client for a certificate from the CA
and picks up new files at the next handshake; ``grpc_channel_credentials`` is the client side
(``dialtone.common.grpc_channel`` makes the channels and remakes them when the files change).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import ssl
import threading

import grpc
from dialtone.common.config import ConfigError, TlsConfig

log = logging.getLogger(__name__)


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


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context (TLS 1.2+) that verifies the server's certificate and name against ``files.ca_file``
    (the system CAs when empty) and presents our certificate when one is given (trunks that want mTLS)."""
    files.check()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.cert_file:
        try:
            context.load_cert_chain(files.cert_file, files.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"TLS files {files.cert_file}, {files.key_file}: {exc}") from None
    return context


class ReloadingContext:
    """An ``SSLContext`` that reloads its files when they change (call ``maybe_reload`` now and then)."""

    def __init__(self, files: TlsFiles, require_client_cert: bool = False, *, client: bool = False) -> None:
        """``client``: a context for connections we open (``client_context``) instead of a server's."""
        self.files = files
        self.context = client_context(files) if client else files.server_context(require_client_cert)
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


def mutual_tls(config: TlsConfig) -> TlsFiles | None:
    """The files of a service's ``tls`` section, checked; None when it is off (no cert_file).
    Raises ConfigError naming the key at fault."""
    if not (config.cert_file or config.key_file or config.ca_file):
        return None
    files = TlsFiles(config.cert_file, config.key_file, config.ca_file)
    if not (config.cert_file and config.key_file and config.ca_file):
        raise ConfigError("tls: mutual TLS needs cert_file, key_file and ca_file together "
                          "(the CA is what peers' certificates are checked against)")
    try:
        files.check()
        _pem_pair(files)
    except TlsConfigError as exc:
        raise ConfigError(f"tls: {exc}") from None
    if config.health_port < 0 or config.health_port > 65535:
        raise ConfigError(f"tls.health_port: {config.health_port} is not a port (0 = none)")
    return files


def _pem_pair(files: TlsFiles) -> tuple[bytes, bytes, bytes]:
    """(key, certificate chain, CA bundle) as PEM bytes, checked to belong together; TlsConfigError if not."""
    try:
        ssl.create_default_context().load_cert_chain(files.cert_file, files.key_file)
        ssl.create_default_context(cafile=files.ca_file)
        with open(files.key_file, "rb") as key, open(files.cert_file, "rb") as cert, open(files.ca_file, "rb") as ca:
            return key.read(), cert.read(), ca.read()
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"TLS files {files.cert_file}, {files.key_file}, {files.ca_file}: {exc}") from None


def grpc_channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client credentials: our certificate for the server to check, the CA to check the server's against."""
    key, chain, ca = _pem_pair(files)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=chain)


class _ServerCertificates:
    """gRPC's certificate fetcher: called by gRPC's own threads at every handshake, it loads the files
    again when they changed (a stat of each), and keeps the last good pair while a new one is half written."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._stamp = files.stamp()
        self.initial = self._configuration()
        self.reloads = 0

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        key, chain, ca = _pem_pair(self.files)
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=ca)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        stamp = self.files.stamp()
        with self._lock:
            if stamp == self._stamp:
                return None
            try:
                configuration = self._configuration()
            except TlsConfigError as exc:
                log.warning("new TLS files not loaded, the old certificate stays: %s", exc)
                return None
            self._stamp = stamp
            self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.files.cert_file, extra={"event": "tls_reloaded"})
        return configuration


def grpc_server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate from ``files.ca_file`` and reload on change."""
    certificates = _ServerCertificates(files)
    return grpc.dynamic_ssl_server_credentials(certificates.initial, certificates,
                                               require_client_authentication=True)

"""SIP over TLS against a real gateway process: OPTIONS over TLS, Via/Contact say TLS, the certificate
is reloaded when its files change, and a client without the CA's certificate is refused when asked."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from tests.helpers import ServiceProcess, free_port


def _options(local: tuple[str, int]) -> bytes:
    return (f"OPTIONS sips:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS {local[0]}:{local[1]};branch=z9hG4bK-"
            f"{os.urandom(4).hex()}\r\nFrom: <sips:a@127.0.0.1>;tag=1\r\nTo: <sips:ping@127.0.0.1>\r\n"
            f"Call-ID: {os.urandom(6).hex()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:a@127.0.0.1:{local[1]};transport=tls>\r\nContent-Length: 0\r\n\r\n").encode()


def _write_pair(cert: trustme.LeafCert, directory: Path) -> tuple[Path, Path]:
    cert_path, key_path = directory / "sip.crt", directory / "sip.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return cert_path, key_path


def _tls_options(port: int, context: ssl.SSLContext) -> tuple[bytes, bytes]:
    """One OPTIONS over a new TLS connection: (the answer, the DER of the server's certificate)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(_options(sock.getsockname()))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer, sock.getpeercert(binary_form=True) or b""


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _start(tmp_path: Path, ca: trustme.CA, **extra: str) -> tuple[ServiceProcess, int]:
    cert_path, key_path = _write_pair(ca.issue_cert("127.0.0.1", "localhost"), tmp_path)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    tls_port = free_port()
    env = {"DIALTONE_MEDIA_GATEWAY__SIP__PORT": "0", "DIALTONE_MEDIA_GATEWAY__SIP__TLS_PORT": str(tls_port),
           "DIALTONE_MEDIA_GATEWAY__SIP__TLS_CERT_FILE": str(cert_path),
           "DIALTONE_MEDIA_GATEWAY__SIP__TLS_KEY_FILE": str(key_path),
           "DIALTONE_MEDIA_GATEWAY__SIP__TLS_CA_FILE": str(ca_path), **extra}
    gateway = ServiceProcess.start("media-gateway", tmp_path, env=env)
    gateway.wait_serving()
    return gateway, tls_port


def test_options_over_tls_and_certificate_reload(tmp_path: Path, ca: trustme.CA) -> None:
    """OPTIONS over TLS is answered 200 with our Via as TLS; after the certificate files are replaced,
    the next connection is served the new certificate (no restart)."""
    gateway, port = _start(tmp_path, ca)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    try:
        answer, first_cert = _tls_options(port, client)
        assert answer.startswith(b"SIP/2.0 200 OK"), answer[:200]
        assert b"Via: SIP/2.0/TLS" in answer
        _write_pair(ca.issue_cert("127.0.0.1", "localhost"), tmp_path)
        deadline = time.monotonic() + 10
        second_cert = first_cert
        while second_cert == first_cert and time.monotonic() < deadline:
            time.sleep(0.5)
            answer, second_cert = _tls_options(port, client)
        assert second_cert != first_cert, "the new certificate was not served within 10 s"
        assert answer.startswith(b"SIP/2.0 200 OK")
    finally:
        gateway.stop()
    assert any(event.get("event") == "tls_reloaded" for event in gateway.log_events())


def test_a_client_certificate_is_required_when_configured(tmp_path: Path, ca: trustme.CA) -> None:
    """With tls_verify_client, a client without a certificate from our CA cannot complete the handshake;
    one with such a certificate is answered. A plaintext client on the TLS port gets nothing."""
    gateway, port = _start(tmp_path, ca, DIALTONE_MEDIA_GATEWAY__SIP__TLS_VERIFY_CLIENT="true")
    anonymous = ssl.create_default_context()
    ca.configure_trust(anonymous)
    stranger = ssl.create_default_context()
    ca.configure_trust(stranger)
    trustme.CA().issue_cert("trunk.example").configure_cert(stranger)
    trunk = ssl.create_default_context()
    ca.configure_trust(trunk)
    ca.issue_cert("trunk.example").configure_cert(trunk)
    try:
        for refused in (anonymous, stranger):
            with pytest.raises((ssl.SSLError, ConnectionError, TimeoutError)):
                answer, _ = _tls_options(port, refused)
                if not answer:
                    raise ConnectionResetError("closed without an answer")
        answer, _ = _tls_options(port, trunk)
        assert answer.startswith(b"SIP/2.0 200 OK"), answer[:200]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(_options(plain.getsockname()))
            plain.settimeout(3)
            try:
                data = plain.recv(65536)
            except (ConnectionError, TimeoutError):
                data = b""
            assert not data.startswith(b"SIP/2.0")
    finally:
        gateway.stop()

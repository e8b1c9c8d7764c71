"""Mutual TLS between the services and tokens on metrics, against real service processes (the integration
gateway: the lightest of the four; every service serves through the same common bootstrap).

A service started with a ``tls`` section refuses a plaintext client, a client without a certificate and
a client whose certificate comes from another CA, and serves one from its own CA; new certificate files
are served to new connections without a restart; ``tls.health_port`` answers health, and only health,
in plaintext (for the kubelet's probes). A metrics endpoint bound beyond loopback refuses to start
without a token, and with a token answers 401 to a scrape without it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
import trustme
from dialtone.common.config import TlsConfig
from dialtone.common.server import wait_serving
from dialtone.v1 import integration_gateway_pb2 as pb
from dialtone.v1 import integration_gateway_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.helpers import ServiceProcess, env_prefix, free_port

SERVICE = "integration-gateway"
PREFIX = env_prefix(SERVICE)
SERVING = health_pb2.HealthCheckResponse.SERVING


class Pki:
    """A CA, the service's certificate, a client's, and the same client names under another CA, as files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        self.server = self.issue("server", "127.0.0.1", "localhost")
        self.client = self.issue("client", "client")
        other = trustme.CA()
        self.stranger = self._pair("stranger", other.issue_cert("client"))

    def _write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def _pair(self, name: str, leaf: trustme.LeafCert) -> TlsConfig:
        # the key first: a reader that sees the new certificate already finds its key
        key = self._write(f"{name}.key", leaf.private_key_pem.bytes())
        cert = self._write(f"{name}.crt", leaf.cert_chain_pems[0].bytes())
        return TlsConfig(cert_file=cert, key_file=key, ca_file=self.ca_file)

    def issue(self, name: str, *hosts: str) -> TlsConfig:
        return self._pair(name, self.ca.issue_cert(*hosts))

    def env(self) -> dict[str, str]:
        return {PREFIX + "TLS__CERT_FILE": self.server.cert_file, PREFIX + "TLS__KEY_FILE": self.server.key_file,
                PREFIX + "TLS__CA_FILE": self.ca_file}


def start_tls(tmp_path: Path, pki: Pki, **env: str) -> ServiceProcess:
    process = ServiceProcess.start(SERVICE, tmp_path, env={**pki.env(), **env})
    if not asyncio.run(wait_serving(process.address, 60.0, pki.client)):
        process.stop()
        raise AssertionError(f"not SERVING over mTLS:\n{process.log_text()}")
    return process


def health_over(channel: grpc.Channel) -> int:
    return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status)


def credentials(pki: Pki, identity: TlsConfig | None) -> grpc.ChannelCredentials:
    if identity is None:
        return grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_pem.bytes())
    return grpc.ssl_channel_credentials(root_certificates=pki.ca.cert_pem.bytes(),
                                        private_key=Path(identity.key_file).read_bytes(),
                                        certificate_chain=Path(identity.cert_file).read_bytes())


def served_certificate(port: int, pki: Pki) -> bytes:
    """The DER of the certificate the server presents to a new TLS connection (as a client with a certificate)."""
    context = ssl.create_default_context(cafile=pki.ca_file)
    context.load_cert_chain(pki.client.cert_file, pki.client.key_file)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        return sock.getpeercert(binary_form=True) or b""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_mtls_refuses_plaintext_no_certificate_and_another_ca_and_serves_its_own(tmp_path: Path, pki: Pki) -> None:
    gateway = start_tls(tmp_path, pki)
    try:
        refused = {"plaintext": grpc.insecure_channel(gateway.address),
                   "no certificate": grpc.secure_channel(gateway.address, credentials(pki, None)),
                   "another CA": grpc.secure_channel(gateway.address, credentials(pki, pki.stranger))}
        for what, channel in refused.items():
            with channel, pytest.raises(grpc.RpcError) as caught:
                health_over(channel)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, what
        with grpc.secure_channel(gateway.address, credentials(pki, pki.client)) as channel:
            assert health_over(channel) == SERVING
            reply = pb_grpc.IntegrationGatewayStub(channel).Invoke(pb.ActionRequest(
                session_id="s1", idempotency_key="s1:1:0", service="nope", method="m", payload_json="{}"), timeout=10)
            assert reply.error_kind == pb.ERROR_KIND_UNKNOWN_SERVICE
        assert gateway.proc.poll() is None
    finally:
        gateway.stop()


def test_new_certificate_files_are_served_to_new_connections_without_a_restart(tmp_path: Path, pki: Pki) -> None:
    gateway = start_tls(tmp_path, pki)
    try:
        first = served_certificate(gateway.grpc_port, pki)
        assert first == ssl.PEM_cert_to_DER_cert(Path(pki.server.cert_file).read_text())
        renewed = pki.issue("server", "127.0.0.1", "localhost")     # the same paths, a new key and certificate
        expected = ssl.PEM_cert_to_DER_cert(Path(renewed.cert_file).read_text())
        assert expected != first
        deadline = time.monotonic() + 10
        seen = first
        while seen != expected and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = served_certificate(gateway.grpc_port, pki)
        assert seen == expected
        with grpc.secure_channel(gateway.address, credentials(pki, pki.client)) as channel:
            assert health_over(channel) == SERVING     # the new pair is whole: gRPC clients get through
        assert gateway.proc.poll() is None
    finally:
        gateway.stop()


def test_the_plaintext_health_port_answers_health_and_nothing_else(tmp_path: Path, pki: Pki) -> None:
    health_port = free_port()
    gateway = start_tls(tmp_path, pki, **{PREFIX + "TLS__HEALTH_PORT": str(health_port)})
    try:
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            assert health_over(channel) == SERVING
            with pytest.raises(grpc.RpcError) as caught:
                pb_grpc.IntegrationGatewayStub(channel).Invoke(pb.ActionRequest(
                    session_id="s1", idempotency_key="s1:1:0", service="x", method="m", payload_json="{}"), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            with pytest.raises(grpc.RpcError) as caught:
                list(reflection)
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        gateway.stop()


def test_a_half_configured_tls_section_is_refused_at_start(tmp_path: Path, pki: Pki) -> None:
    gateway = ServiceProcess.start(SERVICE, tmp_path, env={PREFIX + "TLS__CERT_FILE": pki.server.cert_file,
                                                           PREFIX + "TLS__KEY_FILE": pki.server.key_file})
    assert gateway.proc.wait(30) == 2
    assert "tls: mutual TLS needs cert_file, key_file and ca_file together" in gateway.log_text()


def test_metrics_beyond_loopback_refuse_to_start_without_a_token(tmp_path: Path) -> None:
    """The refusal comes before anything is bound: 0.0.0.0 here is never listened on."""
    gateway = ServiceProcess.start(SERVICE, tmp_path, env={PREFIX + "METRICS__HOST": "0.0.0.0"})
    assert gateway.proc.wait(30) == 2
    assert "the metrics endpoint binds '0.0.0.0', which is reachable beyond loopback: set metrics.token_file" \
        in gateway.log_text()


def test_metrics_with_a_token_answer_401_without_it(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text("scrape-s3cret\n")
    gateway = ServiceProcess.start(SERVICE, tmp_path, env={PREFIX + "METRICS__TOKEN_FILE": str(token_file)})
    try:
        gateway.wait_serving()
        url = f"http://127.0.0.1:{gateway.metrics_port}/metrics"
        for authorization in (None, "Bearer wrong", "Basic scrape-s3cret", "Bearer scrape-s3cre"):
            request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=5)   # noqa: S310 - loopback
            assert caught.value.code == 401 and caught.value.headers["WWW-Authenticate"] == "Bearer"
        request = urllib.request.Request(url, headers={"Authorization": "Bearer scrape-s3cret"})
        with urllib.request.urlopen(request, timeout=5) as response:   # noqa: S310 - loopback
            assert "dialtone_grpc_started_total" in response.read().decode()
    finally:
        gateway.stop()

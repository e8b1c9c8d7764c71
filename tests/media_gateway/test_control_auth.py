"""The control APIs' bearer token, against a real media gateway process: refused at start when an API
binds beyond loopback without a token; with a token, gRPC answers UNAUTHENTICATED and HTTP 401 to a
call without it (or with another), health stays open, and `dialtone calls` sends the configured one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc

from tests.helpers import REPO, ServiceProcess, env_prefix, free_port, health_status

PREFIX = env_prefix("media-gateway")
TOKEN = "ctl-4f1c9a7e"
SERVING = 1


@pytest.mark.parametrize(("setting", "message"), [
    ("GRPC__HOST", "the control gRPC API (grpc.host) binds '0.0.0.0', which is reachable beyond loopback: "
                   "set control.token_file or control.token (or DIALTONE_MEDIA_GATEWAY__CONTROL__TOKEN)"),
    ("CONTROL_HTTP__HOST", "the control HTTP API (control_http.host) binds '0.0.0.0'"),
])
def test_a_control_api_beyond_loopback_without_a_token_is_refused_at_start(
        tmp_path: Path, setting: str, message: str) -> None:
    """Refused before anything is bound (0.0.0.0 is never listened on), exit 2 with the setting to fix."""
    gateway = ServiceProcess.start("media-gateway", tmp_path,
                                   env={PREFIX + "SIP__PORT": "0", PREFIX + setting: "0.0.0.0"})
    assert gateway.proc.wait(60) == 2, gateway.log_text()
    assert message in gateway.log_text()


@pytest.fixture
def gateway(tmp_path: Path):  # noqa: ANN201 - yields (ServiceProcess, http port)
    token_file = tmp_path / "control.token"
    token_file.write_text(TOKEN + "\n")
    http_port = free_port()
    process = ServiceProcess.start("media-gateway", tmp_path, env={
        PREFIX + "SIP__PORT": "0", PREFIX + "CONTROL_HTTP__PORT": str(http_port),
        PREFIX + "CONTROL__TOKEN_FILE": str(token_file)})
    try:
        process.wait_serving()
        yield process, http_port
    finally:
        process.stop()


def test_grpc_control_needs_the_token(gateway: tuple[ServiceProcess, int]) -> None:
    process, _ = gateway
    with grpc.insecure_channel(process.address) as channel:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
            with pytest.raises(grpc.RpcError) as caught:
                stub.ListCalls(pb.ListCallsRequest(), timeout=10, metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert caught.value.details() == "a bearer token is required (authorization: Bearer <token>)"
        with pytest.raises(grpc.RpcError) as caught:
            stub.HangupCall(pb.HangupCallRequest(session_id="x"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = stub.ListCalls(pb.ListCallsRequest(), timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),))
        assert list(reply.calls) == []
    assert health_status(process.address) == SERVING    # probes carry no token


def test_http_control_needs_the_token(gateway: tuple[ServiceProcess, int]) -> None:
    _, http_port = gateway
    with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
            answer = client.get("/v1/calls", headers=headers)
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"] == "Bearer"
            assert answer.json() == {"error": "a bearer token is required (authorization: Bearer <token>)"}
        refused = client.post("/v1/calls", json={"to_uri": "sip:x@127.0.0.1:9", "dialog": "d"})
        assert refused.status_code == 401
        large = client.post("/v1/calls", content=b'{"to_uri": "' + b"x" * 60000 + b'"}')
        assert large.status_code == 401     # the whole request is read: the answer is not lost to a reset
        assert client.get("/v1/calls", headers={"Authorization": f"Bearer {TOKEN}"}).json() == {"calls": []}


def test_the_cli_sends_the_configured_token(gateway: tuple[ServiceProcess, int], tmp_path: Path) -> None:
    process, _ = gateway

    def calls(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dialtone", "calls", "--address", process.address, "--json",
                               "list"], capture_output=True, text=True, timeout=60, cwd=REPO,
                              env={"PATH": "/usr/bin:/bin", **env})

    without = calls({})
    assert without.returncode == 1 and "UNAUTHENTICATED" in without.stderr
    with_token = calls({PREFIX + "CONTROL__TOKEN": TOKEN})
    assert with_token.returncode == 0, with_token.stderr
    assert with_token.stdout.strip() == "[]"

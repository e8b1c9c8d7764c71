"""Each service as a process: SERVING on health, /metrics, clean SIGTERM, bad config, INVALID_ARGUMENT."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from dialtone.v1 import (
    conversation_runtime_pb2,
    conversation_runtime_pb2_grpc,
    integration_gateway_pb2,
    integration_gateway_pb2_grpc,
    media_gateway_pb2,
    media_gateway_pb2_grpc,
    speech_gateway_pb2,
    speech_gateway_pb2_grpc,
)

from tests.helpers import ServiceProcess, free_port

GRACE_S = 5
SERVICES = ["media-gateway", "speech-gateway", "conversation-runtime", "integration-gateway"]


def isolated_env(service: str) -> dict[str, str]:
    """Settings that keep a service's other listeners off fixed ports."""
    prefix = "DIALTONE_" + service.upper().replace("-", "_") + "__"
    env = {prefix + "SHUTDOWN_GRACE_S": str(GRACE_S)}
    if service == "media-gateway":
        env[prefix + "SIP__PORT"] = str(free_port())
    return env


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest, start_service) -> ServiceProcess:
    return start_service(request.param, env=isolated_env(request.param))


def test_serves_health_metrics_and_stops_cleanly(service: ServiceProcess) -> None:
    """Health answers SERVING, /metrics has process and gRPC metrics, SIGTERM exits 0 within the grace."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=5).read().decode()
    assert "process_cpu_seconds_total" in body
    assert "dialtone_grpc_requests_total" in body
    service.terminate()
    # exits by itself, with 0, before the grace period (plus start-up slack) is over
    assert service.proc.wait(timeout=GRACE_S + 5) == 0
    events = [e.get("event") for e in service.log_events()]
    assert events.index("serving") < events.index("draining") < events.index("stopped")


@pytest.mark.parametrize("service_name", SERVICES)
@pytest.mark.parametrize("text,key,expected", [
    ("grpc:\n  prot: 1\n", "'grpc.prot'", "unknown key"),
    ("shutdown_grace_s: soon\n", "'shutdown_grace_s'", "expected a number"),
])
def test_bad_config_exits_nonzero_naming_file_and_key(service_name: str, text: str, key: str, expected: str,
                                                      tmp_path: Path) -> None:
    """A config file with an unknown key or a wrong type stops the service with a message an operator can act on."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "dialtone", service_name, "--config", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    assert str(path) in result.stderr and key in result.stderr and expected in result.stderr


async def _first_stream_error(address: str, stub_cls, method: str, message) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        call = getattr(stub_cls(channel), method)()
        await call.write(message)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in call:
                pass
        return err.value


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    """All four services, started once for the bad-request checks."""
    workdir = tmp_path_factory.mktemp("services")
    procs = {name: ServiceProcess.start(name, workdir, env=isolated_env(name)) for name in SERVICES}
    try:
        for proc in procs.values():
            proc.wait_serving(90)
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


async def test_speech_stream_without_session_id_is_invalid(running) -> None:
    """A media stream whose first message has no session_id is refused with INVALID_ARGUMENT."""
    first = speech_gateway_pb2.MediaUplink(call_start=speech_gateway_pb2.CallStart(sample_rate=16000))
    err = await _first_stream_error(running["speech-gateway"].address, speech_gateway_pb2_grpc.SpeechGatewayStub,
                                    "StreamCall", first)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_id" in err.details()


async def test_runtime_stream_must_start_with_call_started(running) -> None:
    """A dialog stream that starts with a transcript instead of call_started/resume is INVALID_ARGUMENT."""
    first = conversation_runtime_pb2.SpeechEvent(session_id="s1", seq=1,
                                                 transcript=conversation_runtime_pb2.Transcript(text="hi"))
    err = await _first_stream_error(running["conversation-runtime"].address,
                                    conversation_runtime_pb2_grpc.ConversationRuntimeStub, "Converse", first)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details()


@pytest.mark.parametrize("request_fields,fragment", [
    ({"idempotency_key": "s:1:0", "service": "orders", "method": "get"}, "session_id"),
    ({"session_id": "s", "idempotency_key": "s:1:0", "service": "orders", "method": "get",
      "payload_json": "{not json"}, "JSON"),
    ({"session_id": "s", "idempotency_key": "no-colons", "service": "orders", "method": "get"}, "session:seq:index"),
])
async def test_integration_invalid_requests(running, request_fields: dict, fragment: str) -> None:
    """Malformed ActionRequests are INVALID_ARGUMENT with a message saying what is wrong."""
    async with grpc.aio.insecure_channel(running["integration-gateway"].address) as channel:
        stub = integration_gateway_pb2_grpc.IntegrationGatewayStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Invoke(integration_gateway_pb2.ActionRequest(**request_fields), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.value.details()


async def test_media_control_rejects_bad_requests(running) -> None:
    """The control API refuses a hang-up without session id and an originate to a non-SIP URI."""
    async with grpc.aio.insecure_channel(running["media-gateway"].address) as channel:
        stub = media_gateway_pb2_grpc.MediaGatewayControlStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.HangupCall(media_gateway_pb2.HangupCallRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Originate(media_gateway_pb2.OriginateRequest(to_uri="tel:+15551234"), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "SIP URI" in err.value.details()


def test_services_stay_up_after_bad_requests(running) -> None:
    """None of the bad requests above took a service down."""
    for proc in running.values():
        assert proc.proc.poll() is None, proc.log_text()

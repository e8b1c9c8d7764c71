"""Control API (gRPC, HTTP/JSON, CLI), drain, trunk ACL: against real sipp and a real gRPC server."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
import trustme
from dialtone.common.server import create_server
from dialtone.media_gateway.service import MediaGatewayApp
from dialtone.v1 import common_pb2
from dialtone.v1 import media_gateway_pb2 as pb
from dialtone.v1 import media_gateway_pb2_grpc as pb_grpc

from tests.media_gateway.media_spy import MediaSpy
from tests.media_gateway.support import (
    RecordingSpeech,
    free_udp_port,
    gateway_config,
    run_sipp,
    start_gateway,
    start_speech,
    wait_until,
)
from tests.media_gateway.torture import exchange

REPO = Path(__file__).resolve().parents[2]


class Control:
    def __init__(self, app: MediaGatewayApp, speech: RecordingSpeech, grpc_address: str) -> None:
        self.app, self.speech, self.grpc_address = app, speech, grpc_address

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.app.http_port}"


@pytest.fixture
async def control() -> AsyncIterator[Control]:
    speech_server, speech, address = await start_speech()
    app = await start_gateway(gateway_config(address))
    running, port = create_server(app.config, app)
    await running.server.start()
    MediaSpy.opened.clear()
    try:
        yield Control(app, speech, f"127.0.0.1:{port}")
    finally:
        await app.close()
        await running.server.stop(0)
        await speech_server.stop(0)


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialtone", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_originate_list_hangup_over_grpc(control: Control, tmp_path: Path) -> None:
    """Originate places a UAC call (sipp answers), ListCalls shows it active, HangupCall sends BYE."""
    sipp_port = free_udp_port()
    sipp = asyncio.create_task(run_sipp("uas_answer", None, tmp_path, listen_port=sipp_port))
    await asyncio.sleep(0.3)
    async with grpc.aio.insecure_channel(control.grpc_address) as channel:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        reply = await stub.Originate(pb.OriginateRequest(
            to_uri=f"sip:bob@127.0.0.1:{sipp_port}", dialog="survey", caller_id="+15550001",
            headers=[common_pb2.SipHeader(name="X-Campaign", value="q4")]), timeout=10)
        assert reply.session_id and reply.call_id

        async def state() -> str:
            calls = (await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls
            return calls[0].state if calls else ""

        for _ in range(200):
            if await state() == "active":
                break
            await asyncio.sleep(0.05)
        listed = (await stub.ListCalls(pb.ListCallsRequest(), timeout=5)).calls
        assert [(c.session_id, c.state, c.codec, c.call.dialog) for c in listed] == [
            (reply.session_id, "active", "PCMU", "survey")]
        assert (await stub.HangupCall(pb.HangupCallRequest(session_id=reply.session_id), timeout=5)).found
        assert not (await stub.HangupCall(pb.HangupCallRequest(session_id=reply.session_id), timeout=5)).found
    result = await sipp
    assert result.returncode == 0, result.errors + result.stdout
    await wait_until(lambda: bool(control.speech.streams) and bool(control.speech.streams[0].of("call_end")), 10,
                     "CallEnd")
    start = control.speech.streams[0].uplink[0].call_start
    assert start.call.direction == common_pb2.DIRECTION_OUTBOUND and start.call.dialog == "survey"
    assert control.speech.streams[0].of("call_end")[0].reason == "operator_hangup"


async def test_grpc_refuses_bad_requests(control: Control) -> None:
    """Bad control requests get INVALID_ARGUMENT with a message naming the problem."""
    async with grpc.aio.insecure_channel(control.grpc_address) as channel:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        cases = [
            (stub.Originate(pb.OriginateRequest(to_uri="tel:+15551234"), timeout=5), "SIP URI"),
            (stub.Originate(pb.OriginateRequest(to_uri="sip:a@h", caller_id="evil\r\nX: y"), timeout=5), "caller_id"),
            (stub.Originate(pb.OriginateRequest(to_uri="sip:a@h", headers=[
                common_pb2.SipHeader(name="X-A", value="1\r\nVia: x")]), timeout=5), "one line"),
            (stub.HangupCall(pb.HangupCallRequest(), timeout=5), "session_id is required"),
            (stub.HangupCall(pb.HangupCallRequest(session_id="bad id!"), timeout=5), "invalid"),
        ]
        for call, fragment in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert fragment in err.value.details()


async def test_http_json_control(control: Control, tmp_path: Path) -> None:
    """The same API over HTTP/JSON: POST originates, GET lists, DELETE hangs up; errors are JSON 400/404."""
    sipp_port = free_udp_port()
    sipp = asyncio.create_task(run_sipp("uas_answer", None, tmp_path, listen_port=sipp_port))
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(base_url=control.http, timeout=10) as client:
        bad = await client.post("/v1/calls", json={"to_uri": "mailto:x@y"})
        assert bad.status_code == 400 and "SIP URI" in bad.json()["error"]
        assert (await client.post("/v1/calls", content=b"{not json")).status_code == 400
        assert (await client.delete("/v1/calls/nope")).status_code == 404
        assert (await client.get("/v1/nothing")).status_code == 404
        created = await client.post("/v1/calls", json={"to_uri": f"sip:bob@127.0.0.1:{sipp_port}",
                                                       "dialog": "survey", "headers": {"X-Campaign": "q4"}})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        await wait_until(lambda: bool(MediaSpy.opened and MediaSpy.opened[0].started), 10, "answer")
        listed = (await client.get("/v1/calls")).json()["calls"]
        assert [(c["session_id"], c["state"], c["direction"]) for c in listed] == [(session_id, "active", "outbound")]
        gone = await client.delete(f"/v1/calls/{session_id}")
        assert gone.status_code == 200 and gone.json() == {"found": True}
    result = await sipp
    assert result.returncode == 0, result.errors + result.stdout


async def test_cli_lists_and_reports_errors(control: Control, tmp_path: Path) -> None:
    """`dialtone calls list --json` prints the active call; a bad originate exits 2 with the reason."""
    sipp = asyncio.create_task(run_sipp("hangup_by_gateway", control.app.sip_port, tmp_path))
    await wait_until(lambda: bool(MediaSpy.opened and MediaSpy.opened[0].started), 10, "answer")
    code, out, err = await _cli("calls", "--address", control.grpc_address, "--json", "list")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 1 and rows[0]["callee"] == "bot" and rows[0]["state"] == "active"
    code, out, err = await _cli("calls", "--address", control.grpc_address, "hangup", rows[0]["session_id"])
    assert code == 0 and "hung up" in out
    assert (await sipp).returncode == 0
    code, out, err = await _cli("calls", "--address", control.grpc_address, "originate", "tel:123", "--dialog", "d")
    assert code == 2 and "INVALID_ARGUMENT" in err and "SIP URI" in err


async def test_drain_refuses_new_invites_and_waits_for_calls(control: Control, tmp_path: Path) -> None:
    """While draining, a new INVITE gets 503 with Retry-After; drain returns once the active call ended."""
    sipp = asyncio.create_task(run_sipp("hangup_by_gateway", control.app.sip_port, tmp_path))
    await wait_until(lambda: bool(MediaSpy.opened and MediaSpy.opened[0].started and control.speech.streams
                                  and control.speech.streams[0].uplink), 15, "answer and speech stream")
    drain = asyncio.create_task(control.app.drain())
    await asyncio.sleep(0.1)
    assert not drain.done()
    from tests.media_gateway.test_torture import _invite  # a well-formed INVITE

    received: list[bytes] = []
    codes = await exchange(control.app.sip_port, _invite(), 0.5, sink=received)
    assert 503 in codes, codes
    assert any(b"Retry-After: 30" in data or b"Retry-after: 30" in data for data in received)
    control.speech.streams[0].send(hangup=common_pb2.Hangup(reason="dialog_hangup"))
    await asyncio.wait_for(drain, 10)
    assert (await sipp).returncode == 0


async def test_acl_drops_sources_outside_the_trunk_networks(tmp_path: Path) -> None:
    """With allowed_networks 10.0.0.0/8 an OPTIONS from 127.0.0.1 gets no answer at all."""
    server, _speech, address = await start_speech()
    app = await start_gateway(gateway_config(address, allowed_networks=["10.0.0.0/8"]))
    try:
        result = await run_sipp("options", app.sip_port, tmp_path, timeout=2)
        assert result.returncode != 0
        assert "200" not in result.errors
    finally:
        await app.close()
        await server.stop(0)


async def test_originate_unanswered_is_cancelled_after_ring_timeout(control: Control, tmp_path: Path) -> None:
    """An outbound call still ringing after ring_timeout_s is CANCELled (sipp expects CANCEL, answers 487)."""
    sipp_port = free_udp_port()
    sipp = asyncio.create_task(run_sipp("uas_no_answer", None, tmp_path, listen_port=sipp_port))
    await asyncio.sleep(0.3)
    async with grpc.aio.insecure_channel(control.grpc_address) as channel:
        stub = pb_grpc.MediaGatewayControlStub(channel)
        reply = await stub.Originate(pb.OriginateRequest(to_uri=f"sip:bob@127.0.0.1:{sipp_port}",
                                                         ring_timeout_s=1), timeout=10)
        assert reply.session_id
    result = await sipp
    assert result.returncode == 0, result.errors + result.stdout
    await wait_until(lambda: not control.app.calls.calls, 10, "call gone")  # type: ignore[union-attr]
    assert not control.speech.streams
    assert MediaSpy.opened and MediaSpy.opened[0].closed and not MediaSpy.opened[0].started


@pytest.mark.parametrize(("password", "registered"), [("s3cret", True), ("wrong", False)])
async def test_registers_to_a_pbx_with_digest_auth(tmp_path: Path, password: str, registered: bool) -> None:
    """With a registrar configured the gateway REGISTERs, answers the 401 challenge with digest auth,
    and reports registered only when the PBX (sipp) accepts the credentials."""
    server, _speech, address = await start_speech()
    registrar_port = free_udp_port()
    sipp = asyncio.create_task(run_sipp("registrar", None, tmp_path, listen_port=registrar_port, timeout=10))
    await asyncio.sleep(0.3)
    config = gateway_config(address)
    config.registration.registrar = f"sip:127.0.0.1:{registrar_port}"
    config.registration.user, config.registration.password = "1001", password
    app = await start_gateway(config)
    try:
        result = await sipp
        assert (result.returncode == 0) == registered, result.errors + result.stdout
        if not registered:  # sipp took the "credentials wrong" branch, not some other failure
            assert "receive timeout on message" in result.errors and ":4 " in result.errors, result.errors
        assert app.stack is not None
        if registered:
            await wait_until(lambda: app.stack.registration.registered, 5, "registered")  # type: ignore[union-attr]
        else:
            assert not app.stack.registration.registered  # type: ignore[union-attr]
    finally:
        await app.close()
        await server.stop(0)


async def test_flood_from_one_source_is_bounded(tmp_path: Path) -> None:
    """With a 5-datagram burst and 1/s refill, 30 OPTIONS sent at once from one socket get about 5 answers."""
    server, _speech, address = await start_speech()
    app = await start_gateway(gateway_config(address, flood_burst=5, flood_rate_per_s=1.0))
    try:
        from tests.media_gateway.torture import open_collector, point_top_via_at

        collector, port = await open_collector()
        for i in range(30):
            message = (f"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-f{i}\r\n"
                       f"From: <sip:a@b>;tag={i}\r\nTo: <sip:bot@c>\r\nCall-ID: flood-{i}\r\nCSeq: 1 OPTIONS\r\n"
                       "Content-Length: 0\r\n\r\n").encode()
            collector.transport.sendto(point_top_via_at(message, "127.0.0.1", port), ("127.0.0.1", app.sip_port))
        await asyncio.sleep(0.8)
        answered = collector.status_codes()
        collector.transport.close()
        assert 5 <= len(answered) <= 7 and set(answered) == {200}, answered
    finally:
        await app.close()
        await server.stop(0)


async def test_originate_answers_a_digest_challenge(tmp_path: Path) -> None:
    """A PBX that challenges our INVITE with 401: sippy retries with digest auth from the registration
    credentials; the PBX (sipp) verifies them, answers, and gets our BYE on HangupCall."""
    server, speech, address = await start_speech()
    config = gateway_config(address)
    config.registration.user, config.registration.password = "1001", "s3cret"
    app = await start_gateway(config)
    MediaSpy.opened.clear()
    sipp_port = free_udp_port()
    sipp = asyncio.create_task(run_sipp("uas_auth", None, tmp_path, listen_port=sipp_port))
    await asyncio.sleep(0.3)
    try:
        assert app.calls is not None
        call = await app.calls.originate(f"sip:bob@127.0.0.1:{sipp_port}", "survey", "1001", [("X-Campaign", "q4")])
        await wait_until(lambda: call.state == "active", 10, "answered after the challenge")
        assert app.calls.hangup(call.session_id)
        result = await sipp
        assert result.returncode == 0, result.errors + result.stdout
    finally:
        await app.close()
        await server.stop(0)


async def test_sigterm_drains_a_real_gateway_process(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`dialtone media-gateway` as a process: on SIGTERM a new INVITE gets 503 + Retry-After, the call in
    progress is hung up (BYE) when the grace period ends, and the process exits 0."""
    from tests.media_gateway.test_torture import _invite

    server, speech, address = await start_speech()
    sip_port = free_udp_port()
    prefix = "DIALTONE_MEDIA_GATEWAY__"
    proc = start_service("media-gateway", env={
        f"{prefix}SIP__PORT": str(sip_port), f"{prefix}SPEECH_GATEWAY_ADDRESS": address,
        f"{prefix}SHUTDOWN_GRACE_S": "3", f"{prefix}CONTROL_HTTP__ENABLED": "false"})
    try:
        sipp = asyncio.create_task(run_sipp("hangup_by_gateway", sip_port, tmp_path, timeout=30))
        await wait_until(lambda: bool(speech.streams and speech.streams[0].uplink), 15, "call up")
        proc.terminate()
        await asyncio.sleep(0.5)
        received: list[bytes] = []
        codes = await exchange(sip_port, _invite(), 0.5, sink=received)
        assert 503 in codes and any(b"Retry-After: 30" in data for data in received), codes
        result = await sipp
        assert result.returncode == 0, result.errors + result.stdout
        exit_code = await asyncio.get_running_loop().run_in_executor(None, proc.proc.wait, 20)
        assert exit_code == 0
        await wait_until(lambda: bool(speech.streams[0].of("call_end")), 5, "CallEnd")
        assert speech.streams[0].of("call_end")[0].reason == "shutdown"
    finally:
        await server.stop(0)


async def test_failed_start_leaves_no_sip_thread_behind() -> None:
    """A start that fails (bad registrar URI -> ConfigError) stops sippy's loop thread, and the next gateway in
    the same process starts and answers OPTIONS."""
    import threading

    from dialtone.common.config import ConfigError

    from tests.media_gateway.test_sip_guard import OPTIONS

    server, _speech, address = await start_speech()
    config = gateway_config(address)
    config.registration.registrar = "mailto:pbx@example.com"
    with pytest.raises(ConfigError, match="registration.registrar"):
        await start_gateway(config)
    assert not any(t.name == "sippy-ed2" and t.is_alive() for t in threading.enumerate())
    app = await start_gateway(gateway_config(address))
    try:
        assert 200 in await exchange(app.sip_port, OPTIONS, 0.5)
    finally:
        await app.close()
        await server.stop(0)


async def test_registers_over_tls_to_a_sips_registrar(tmp_path: Path) -> None:
    """registration.registrar sips:... : the REGISTER goes over TLS (the registrar's certificate verified
    against sip.tls_ca_file), its Via says TLS and its Contact our TLS port with transport=tls; the
    registrar's 200 makes the gateway registered."""
    ca = trustme.CA()
    ours, theirs = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    for name, cert in (("gateway", ours), ("registrar", theirs)):
        cert.cert_chain_pems[0].write_to_path(str(tmp_path / f"{name}.crt"))
        cert.private_key_pem.write_to_path(str(tmp_path / f"{name}.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    registrar_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    registrar_tls.load_cert_chain(str(tmp_path / "registrar.crt"), str(tmp_path / "registrar.key"))
    registers: list[str] = []

    async def registrar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := (await reader.readuntil(b"\r\n\r\n")).decode()).startswith("REGISTER"):
            registers.append(head)
            keep = [line for line in head.split("\r\n")
                    if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq", "contact")]
            writer.write(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n")
                         .encode())
            await writer.drain()

    server = await asyncio.start_server(registrar, "127.0.0.1", 0, ssl=registrar_tls)
    port = server.sockets[0].getsockname()[1]
    speech_server, _speech, address = await start_speech()
    config = gateway_config(address, tls_port=0, tls_cert_file=str(tmp_path / "gateway.crt"),
                            tls_key_file=str(tmp_path / "gateway.key"), tls_ca_file=str(tmp_path / "ca.pem"))
    config.registration.registrar = f"sips:127.0.0.1:{port}"
    config.registration.user = "1001"
    app = await start_gateway(config)
    try:
        assert app.stack is not None
        await wait_until(lambda: app.stack.registration.registered, 10, "registered over TLS")  # type: ignore[union-attr]
        via = next(line for line in registers[0].split("\r\n") if line.lower().startswith("via:"))
        contact = next(line for line in registers[0].split("\r\n") if line.lower().startswith("contact:"))
        assert "SIP/2.0/TLS" in via, via
        assert f"1001@127.0.0.1:{app.stack.tls_port};transport=tls" in contact, contact
    finally:
        await app.close()
        await speech_server.stop(0)
        server.close()

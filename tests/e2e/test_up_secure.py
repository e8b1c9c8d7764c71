"""`dialtone up --secure`: the four services with mutual TLS on every gRPC hop and SIP over TLS, from a
development CA `up` makes; then a whole call through the secure hops.

Checked on the running processes: each service answers health over mTLS with the CLI's certificate
(from .dialtone/cli.yaml) and refuses a plaintext client; the media gateway presents its certificate
on the SIP TLS port; the CLI reaches the control API and a backend with that file. A WebRTC call to
order_status (an aiortc peer, silent, keying the order number) crosses media -> speech -> runtime ->
integration gateway -> example backend: the greeting comes back and the backend is asked. The same call
from baresip over SIP TLS with SRTP required: heard, understood, and no plain RTP on the wire.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
import yaml
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from dialtone.common.config import TlsConfig
from dialtone.common.server import wait_serving
from dialtone.media_gateway.webrtc.ice import use_host_addresses
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.support import Stack
from tests.media_gateway.baresip import Baresip, RtpCapture, plain_g711_silence

SERVICES = {"media-gateway": 1, "speech-gateway": 2, "conversation-runtime": 3, "integration-gateway": 4}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("up-secure"), args=["--secure"])
    yield running
    running.stop()


def cli_tls(stack: Stack) -> TlsConfig:
    written = yaml.safe_load((stack.folder / ".dialtone" / "cli.yaml").read_text())
    return TlsConfig(**written["tls"])


def test_every_service_serves_mtls_only(secure: Stack) -> None:
    tls = cli_tls(secure)
    for service, offset in SERVICES.items():
        address = f"127.0.0.1:{secure.base + offset}"
        assert asyncio.run(wait_serving(address, 5.0, tls)), service
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as caught:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, service
    banner = secure.log().split("dialtone is up.", 1)[1]
    assert f"sips:order_status@127.0.0.1:{secure.sip_port + 1}" in banner
    assert "dialtone calls --config .dialtone/cli.yaml list" in banner


def test_sip_over_tls_presents_the_gateways_certificate(secure: Stack) -> None:
    folder = secure.folder / ".dialtone" / "tls"
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    with socket.create_connection(("127.0.0.1", secure.sip_port + 1), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        served = sock.getpeercert(binary_form=True)
    assert served == ssl.PEM_cert_to_DER_cert((folder / "media-gateway.crt").read_text())


def test_the_cli_reaches_control_and_backends_with_the_written_config(secure: Stack) -> None:
    def dialtone(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dialtone", *args], capture_output=True, text=True, timeout=60,
                              cwd=secure.folder)

    listed = dialtone("calls", "--address", f"127.0.0.1:{secure.base + 1}", "--config", ".dialtone/cli.yaml",
                      "--json", "list")
    assert listed.returncode == 0, listed.stderr
    called = dialtone("backend", "call", "orders", "get_status", "--payload", '{"order_id": "12345"}',
                      "--address", f"127.0.0.1:{secure.base + 4}", "--config", ".dialtone/cli.yaml")
    assert called.returncode == 0, called.stdout + called.stderr
    assert json.loads(called.stdout)["body"]["eta"] == "Tuesday"
    plain = dialtone("calls", "--address", f"127.0.0.1:{secure.base + 1}", "list")
    assert plain.returncode == 1 and "UNAVAILABLE" in plain.stderr


def test_a_call_crosses_every_secure_hop(secure: Stack) -> None:
    """Greeting heard (runtime -> speech over mTLS, back to the media gateway), the keyed order number
    looked up (runtime -> integration gateway over mTLS -> example backend)."""
    use_host_addresses(["127.0.0.1"])
    try:
        asyncio.run(_keyed_order_status_call(secure))
    finally:
        use_host_addresses([])


async def _keyed_order_status_call(stack: Stack) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    keypad = pc.createDataChannel("dtmf")
    pc.addTrack(AudioStreamTrack())      # silence: the order number is keyed, so no ASR luck is involved
    heard: list[float] = []

    @pc.on("track")
    def on_track(track) -> None:  # noqa: ANN001 - aiortc's MediaStreamTrack
        async def listen() -> None:
            while True:
                frame = await track.recv()
                heard.append(float(abs(frame.to_ndarray()).max()))
        asyncio.ensure_future(listen())

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.base + 88}", timeout=20) as client:
        answer = (await client.post("/api/offer", json={"sdp": pc.localDescription.sdp,
                                                         "dialog": "order_status"})).json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        try:
            deadline = time.monotonic() + 30
            while not (keypad.readyState == "open" and any(level > 1000 for level in heard)):
                assert time.monotonic() < deadline, f"no greeting heard: {pc.connectionState}, {keypad.readyState}"
                await asyncio.sleep(0.1)
            for digit in "24681#":
                keypad.send(json.dumps({"digit": digit}))
                await asyncio.sleep(0.2)
            deadline = time.monotonic() + 30
            while "orders.get_status GET /orders/24681 -> 200" not in stack.log():   # only this call asks for it
                assert time.monotonic() < deadline, stack.log()[-3000:]
                await asyncio.sleep(0.2)
        finally:
            await client.post("/api/hangup", json={"session_id": answer["session_id"]})
            await pc.close()


def test_baresip_over_tls_with_srtp_is_heard_and_understood(secure: Stack, tmp_path) -> None:
    """baresip (SIP over TLS to SIP port + 1, SRTP mandatory, trusting the stack's development CA) calls
    order_status: it hears the greeting, its keyed order number is looked up at the example backend, and
    tcpdump on the RTP ports sees no packet of plain G.711 silence (every packet is SRTP)."""
    asyncio.run(_baresip_secure_call(secure, tmp_path))


async def _baresip_secure_call(stack: Stack, folder) -> None:  # noqa: ANN001 - a pytest tmp_path
    ca = stack.folder / ".dialtone" / "tls" / "ca.crt"
    phone = Baresip(folder, "<sip:tester@127.0.0.1;transport=tls>;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand",
                    extra_config=f"sip_cafile {ca}\n", modules=("srtp.so",))
    with RtpCapture(folder / "srtp.pcap", 20000, 30000) as capture:
        await phone.start()
        try:
            await phone.command("dial", f"sip:order_status@127.0.0.1:{stack.sip_port + 1};transport=tls")
            deadline = time.monotonic() + 30
            while phone.heard_so_far_dbfs() < -30.0:
                assert time.monotonic() < deadline, "no greeting heard over SRTP: " + stack.log()[-2000:]
                await asyncio.sleep(0.2)
            for digit in "13579#":
                await phone.command("sndcode", digit)
                await asyncio.sleep(0.3)
            deadline = time.monotonic() + 30
            while "orders.get_status GET /orders/13579 -> 200" not in stack.log():   # only this call asks for it
                assert time.monotonic() < deadline, stack.log()[-3000:]
                await asyncio.sleep(0.2)
            await phone.command("hangup")
        finally:
            await phone.stop()
    # the gateway's RTP port of this call, as baresip reports it (other calls on this machine may use the range)
    port = re.search(r"receiving from 127\.0\.0\.1:(\d+)", (folder / "baresip.log").read_text(errors="replace"))
    assert port is not None, (folder / "baresip.log").read_text(errors="replace")[-2000:]
    payloads = capture.payloads(int(port.group(1)))
    assert len(payloads) > 100, "no RTP captured"
    assert plain_g711_silence(payloads) == 0, "plain G.711 on the wire of an SRTP call"

"""Hostile StreamCall input against real `dialtone speech-gateway` and `dialtone conversation-runtime`
processes: what the speech gateway can judge it refuses itself (INVALID_ARGUMENT, a short
message, the runtime never sees it); what only the runtime can judge (an unknown dialog, a resume
of a session it does not know) ends the call as ``runtime_refused`` instead of being resumed for
``runtime_reconnect_s`` and reported as ``runtime_unavailable``."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from dialtone.v1 import common_pb2 as cpb
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ServiceProcess, health_status
from tests.speech_gateway.standins import MediaClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    workdir = tmp_path_factory.mktemp("refusals")
    runtime = ServiceProcess.start("conversation-runtime", workdir, env={
        "DIALTONE_CONVERSATION_RUNTIME__STORE__PATH": str(workdir / "sessions.sqlite3")})
    speech = None
    try:
        runtime.wait_serving(60)
        speech = ServiceProcess.start("speech-gateway", workdir, env={
            "DIALTONE_SPEECH_GATEWAY__RUNTIME_ADDRESS": runtime.address})
        speech.wait_serving(90)
        yield {"runtime": runtime, "speech": speech}
    finally:
        for proc in (speech, runtime):
            if proc is not None:
                proc.stop()


def metric(proc: ServiceProcess, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def refusals(speech: ServiceProcess, code: str) -> float:
    return metric(speech, "dialtone_speech_runtime_refusals_total", code=code)


def resumes(speech: ServiceProcess) -> float:
    return metric(speech, "dialtone_speech_runtime_reconnects_total", outcome="resumed")


async def end_after_hangup(media: MediaClient, timeout: float = 30.0) -> cpb.Hangup:
    """The hangup the speech gateway sends; then the call ends as the media gateway ends it."""
    hangups = await media.wait_for(lambda: media.of("hangup"), timeout)
    await media.end("dialog_hangup")
    return hangups[0].hangup


async def test_unknown_dtmf_key_is_refused_at_the_edge_and_the_call_resumes(services) -> None:
    """DTMF "X" ends the media stream with INVALID_ARGUMENT before the runtime sees it; the media
    side's resumed stream carries on with the same runtime session, and ends normally."""
    speech = services["speech"]
    refused_before = refusals(speech, "INVALID_ARGUMENT")
    media = MediaClient(speech.address, "refusals-dtmf")
    try:
        await media.start()
        await media.wait_for(lambda: any(m.play_audio.last for m in media.of("play_audio")), 60)
        await media.send(dtmf=cpb.Dtmf(digit="X", duration_ms=100, source=cpb.DTMF_SOURCE_RFC4733))
        with pytest.raises(AssertionError):
            await media.wait_for(lambda: False, timeout=20)
    finally:
        await media.close()
    assert media.status == grpc.StatusCode.INVALID_ARGUMENT
    assert media.details == "Dtmf: digit 'X' is not one of 0-9, *, #, A-D"

    resumed = MediaClient(speech.address, "refusals-dtmf")
    try:
        await resumed.start(resume=True)
        await resumed.send(dtmf=cpb.Dtmf(digit="1", duration_ms=100, source=cpb.DTMF_SOURCE_RFC4733))
        await resumed.silence(400)
        await resumed.end()
    finally:
        await resumed.close()
    assert resumed.status == grpc.StatusCode.OK
    assert resumed.of("hangup") == []
    assert refusals(speech, "INVALID_ARGUMENT") == refused_before   # the runtime refused nothing


async def test_a_megabyte_dialog_name_is_refused_with_a_short_message(services) -> None:
    speech = services["speech"]
    media = MediaClient(speech.address, "refusals-huge")
    try:
        await media.start(dialog="d" * 1_000_000)
        with pytest.raises(AssertionError):
            await media.wait_for(lambda: False, timeout=20)
    finally:
        await media.close()
    assert media.status == grpc.StatusCode.INVALID_ARGUMENT   # not RESOURCE_EXHAUSTED: the message is short
    assert media.details == "CallInfo.dialog is 1000000 characters; the limit is 128"
    assert await asyncio.to_thread(health_status, speech.address) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("resume, dialog", [(False, "no_such_dialog"), (True, "")],
                         ids=["unknown dialog", "resume of an unknown session"])
async def test_what_the_runtime_refuses_ends_the_call_as_refused_without_a_resume(services, resume, dialog) -> None:
    """The runtime refuses the stream's first event; the call is hung up as runtime_refused, with
    no resume (before the fix: ~11 s of resumes, then runtime_unavailable)."""
    speech = services["speech"]
    refused_before, resumed_before = refusals(speech, "INVALID_ARGUMENT"), resumes(speech)
    media = MediaClient(speech.address, f"refusals-first-{int(resume)}")
    try:
        await media.start(resume=resume, dialog=dialog)
        hangup = await end_after_hangup(media)
    finally:
        await media.close()
    assert hangup.reason == "runtime_refused"
    assert media.status == grpc.StatusCode.OK
    assert refusals(speech, "INVALID_ARGUMENT") == refused_before + 1
    assert resumes(speech) == resumed_before

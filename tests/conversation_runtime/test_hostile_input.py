"""Hostile input against a real runtime process (issue 21): oversized fields refused before they are
stored, error messages that quote a prefix, gRPC's message limit, memory that stays put, abandoned
streams closed and their calls parked, then ended as stream_lost, and dialogs whose conditions
would crash or freeze the runtime refused at start or stopped by their step budget."""

from __future__ import annotations

import asyncio
import shutil
import urllib.request
from pathlib import Path

import grpc
import pytest
from dialtone.common.errors import InvalidArgument
from dialtone.conversation_runtime import convert
from dialtone.conversation_runtime.config import EXAMPLES_DIR, MAX_MESSAGE_BYTES
from dialtone.v1 import common_pb2
from dialtone.v1 import conversation_runtime_pb2 as pb
from dialtone.v1 import conversation_runtime_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.conversation_runtime.support import Stream, call_started, kinds, resume, start_gateway, transcript
from tests.helpers import health_status

PREFIX = "DIALTONE_CONVERSATION_RUNTIME__"
MAX_DETAILS = 200

ORPHAN = """\
dialog:
  name: orphan
  initial: wait
  states:
    wait:
      on_enter: [{say: "waiting"}]
      transitions:
        - event: timeout
          after: 1s
          target: later
        - event: hangup
          actions:
            - call: {service: crm, method: log, payload: {why: '${reason}'}}
        - event: backend.result
          target: later
    later:
      on_enter: [{say: "timer fired"}, {hangup: timer}]
"""

BUDGET = """\
dialog:
  name: budget
  initial: menu
  variables: {r: [VALUES]}
  states:
    menu:
      on_enter: [{say: "press one"}]
      transitions:
        - event: dtmf
          condition: 'r.all(a, r.all(b, a + b >= 0))'
          target: all_pairs
        - event: dtmf
          target: gave_up
    all_pairs:
      on_enter: [{hangup: all_pairs}]
    gave_up:
      on_enter: [{hangup: gave_up}]
""".replace("VALUES", ", ".join(str(i) for i in range(300)))

FREEZER = """\
dialog:
  name: freezer
  initial: menu
  states:
    menu:
      on_enter: [{say: "press a key"}]
      transitions:
        - event: dtmf
          condition: 'CUBE.all(x, CUBE.all(y, CUBE.all(z, x + y + z >= 0)))'
          target: bye
    bye:
      on_enter: [{hangup: done}]
""".replace("CUBE", "[" + ", ".join(str(i) for i in range(30)) + "]")


@pytest.fixture
async def gateway():
    server, servicer, address = await start_gateway()
    yield servicer, address
    await server.stop(0)


@pytest.fixture
def dialogs(tmp_path: Path) -> Path:
    folder = tmp_path / "dialogs"
    shutil.copytree(EXAMPLES_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.test.yaml"))
    (folder / "orphan.yaml").write_text(ORPHAN)
    (folder / "budget.yaml").write_text(BUDGET)
    return folder


def runtime_env(tmp_path: Path, gateway_address: str, dialogs: Path, **settings: str) -> dict[str, str]:
    env = {PREFIX + "INTEGRATION_ADDRESS": gateway_address, PREFIX + "DIALOGS": f"[{dialogs}]",
           PREFIX + "STORE__PATH": str(tmp_path / "sessions.sqlite3"), PREFIX + "TIMER_POLL_S": "0.1",
           PREFIX + "RELOAD_INTERVAL_S": "0"}
    env.update({PREFIX + name.upper(): value for name, value in settings.items()})
    return env


@pytest.fixture
def runtime(tmp_path: Path, gateway, dialogs: Path, start_service):
    return start_service("conversation-runtime", env=runtime_env(tmp_path, gateway[1], dialogs))


def metric(process, name: str, labels: dict[str, str] | None = None) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{process.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                return sample.value
    return 0.0


def log_count(process, prefix: str) -> int:
    return sum(1 for e in process.log_events() if e.get("msg", "").startswith(prefix))


async def until(predicate, what: str, process, tries: int = 300) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} never happened:\n{process.log_text()[-12000:]}")


async def refusal(address: str, *events: pb.SpeechEvent) -> grpc.aio.AioRpcError:
    stream = Stream(address)
    try:
        for event in events:
            await stream.send(event)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream.read_until("hangup")
        return info.value
    finally:
        await stream.close()


def started(session_id: str, **call: object) -> pb.SpeechEvent:
    headers = call.pop("headers", [])
    call.setdefault("callee", "1000")
    info = common_pb2.CallInfo(headers=[common_pb2.SipHeader(name=n, value=v) for n, v in headers], **call)
    return pb.SpeechEvent(session_id=session_id, seq=1, call_started=pb.CallStarted(call=info))


FIRST_MESSAGES = [
    ("caller", started("f1", caller="c" * 1025), "CallInfo.caller is 1025 characters; the limit is 1024"),
    ("callee", started("f2", callee="1" * 1025), "CallInfo.callee is 1025 characters; the limit is 1024"),
    ("call_id", started("f3", call_id="i" * 257), "CallInfo.call_id is 257 characters; the limit is 256"),
    ("dialog 200 kB", started("f4", dialog="d" * 200_000), "CallInfo.dialog is 200000 characters; the limit is 128"),
    ("129 headers", started("f5", headers=[("X-H", "v")] * 129), "129 headers; the limit is 128"),
    ("header value", started("f6", headers=[("X-Big", "h" * 4097)]), "header 'X-Big' is 4097 characters"),
    ("headers in all", started("f7", headers=[(f"X-H{i}", "h" * 4000) for i in range(20)]),
     "headers of 80090 characters in all; the limit is 65536"),
]


@pytest.mark.parametrize(("event", "words"), [(e, w) for _, e, w in FIRST_MESSAGES],
                         ids=[n for n, _, _ in FIRST_MESSAGES])
async def test_oversized_call_started_is_refused_before_it_is_stored(runtime, event, words) -> None:
    """Each field over its limit: INVALID_ARGUMENT with a short message saying so, and no session stored
    (a resume of it is unknown); the runtime goes on serving calls."""
    error = await refusal(runtime.address, event)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in error.details() and len(error.details()) <= MAX_DETAILS
    error = await refusal(runtime.address, resume(event.session_id, 0, 0))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "is unknown" in error.details()
    stream = Stream(runtime.address)
    await stream.send(call_started(f"ok-{event.session_id}"))
    assert kinds(await stream.read(2)) == ["state_changed", "say"]
    await stream.close()


LATER_MESSAGES = [
    ("transcript", transcript("m1", 2, "t" * 4097), "transcript text is 4097 characters; the limit is 4096"),
    ("utterance id", pb.SpeechEvent(session_id="m1", seq=2, playback_finished=common_pb2.PlaybackFinished(
        utterance_id="u" * 257)), "playback_finished.utterance_id is 257 characters; the limit is 256"),
    ("transfer target", pb.SpeechEvent(session_id="m1", seq=2, transfer_result=common_pb2.TransferResult(
        target_uri="sip:" + "t" * 1021)), "transfer_result.target_uri is 1025 characters; the limit is 1024"),
    ("hangup reason", pb.SpeechEvent(session_id="m1", seq=2, call_ended=pb.CallEnded(reason="r" * 257)),
     "call_ended.reason is 257 characters; the limit is 256"),
    ("session id 200 kB", pb.SpeechEvent(session_id="s" * 200_000, seq=2, dtmf=common_pb2.Dtmf(digit="1")),
     "... (200000 characters) does not match"),
]


@pytest.mark.parametrize(("event", "words"), [(e, w) for _, e, w in LATER_MESSAGES],
                         ids=[n for n, _, _ in LATER_MESSAGES])
async def test_oversized_event_mid_call_is_refused_with_a_short_message(runtime, event, words) -> None:
    error = await refusal(runtime.address, call_started("m1"), event)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in error.details() and len(error.details()) <= MAX_DETAILS


async def test_unknown_dialog_is_quoted_by_a_prefix(runtime) -> None:
    """The issue's echo: a name within the limit but unknown is quoted by its first 64 characters."""
    error = await refusal(runtime.address, started("q1", dialog="n" * 128))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"unknown dialog {'n' * 64!r}... (128 characters)" in error.details()
    assert len(error.details()) <= MAX_DETAILS


async def test_message_over_the_size_limit_is_refused_by_grpc(runtime) -> None:
    """A 1 MB dialog name is refused by gRPC before the runtime reads it (RESOURCE_EXHAUSTED, its own
    short message); health and other calls are unaffected."""
    event = started("big", dialog="d" * 1_000_000)
    assert event.ByteSize() > MAX_MESSAGE_BYTES
    error = await refusal(runtime.address, event)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and len(error.details()) <= MAX_DETAILS
    assert health_status(runtime.address) == 1
    stream = Stream(runtime.address)
    await stream.send(call_started("after-big"))
    assert kinds(await stream.read(2)) == ["state_changed", "say"]
    await stream.close()


async def test_refusals_leave_memory_where_it_was(runtime) -> None:
    """Hundreds of oversized requests (over the message limit, or a field over its own) leave the
    runtime's resident memory within 20 % of where it started (it grew 57 -> 488 MB before)."""
    def rss_kb() -> int:
        for line in Path(f"/proc/{runtime.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    async def refused(stub: pb_grpc.ConversationRuntimeStub, event: pb.SpeechEvent) -> grpc.StatusCode:
        call = stub.Converse(iter([event]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call:
                pass
        return info.value.code()

    events = [started("r", dialog="d" * 1_000_000), started("r", dialog="d" * 200_000),
              started("r", caller="c" * 200_000, headers=[("X-Big", "h" * 50_000)])]
    options = [("grpc.max_send_message_length", 4 * MAX_MESSAGE_BYTES)]
    async with grpc.aio.insecure_channel(runtime.address, options=options) as channel:
        stub = pb_grpc.ConversationRuntimeStub(channel)
        for event in events * 10:  # warm up: gRPC's and Python's own first allocations
            await refused(stub, event)
        before = rss_kb()
        codes = [await refused(stub, event) for _ in range(60) for event in events]
    assert set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT}
    assert rss_kb() <= before * 1.2


@pytest.fixture(params=["sqlite", "redis"])
def orphan_env(request, tmp_path: Path, gateway, dialogs: Path) -> dict[str, str]:
    env = runtime_env(tmp_path, gateway[1], dialogs, orphan_timeout_s="3", lease_ttl_s="1",
                      store__kind=request.param)
    if request.param == "redis":
        env[PREFIX + "STORE__URL"] = request.getfixturevalue("redis_server")
    return env


async def test_abandoned_streams_are_closed_parked_then_end_as_stream_lost(orphan_env, gateway, start_service) -> None:
    """Three clients read their greeting, then close their channels without cancelling: the runtime's
    streams close (active streams back to 0), each call is parked (its 1 s timer never fires: no one
    would hear it) and ends as stream_lost after orphan_timeout_s, its hangup transition calling the
    backend; a stream that resumes it afterwards is told Hangup(stream_lost)."""
    servicer, _ = gateway
    runtime = start_service("conversation-runtime", env=orphan_env)
    for n in range(3):
        stream = Stream(runtime.address)
        await stream.send(call_started(f"a{n}", dialog="orphan"))
        assert kinds(await stream.read(2)) == ["state_changed", "say"]
        await stream.channel.close()
    await until(lambda: metric(runtime, "dialtone_runtime_active_streams") == 0, "streams closing", runtime)
    await until(lambda: log_count(runtime, "stream closed before the call ended: parked") == 3, "parking", runtime)
    await until(lambda: metric(runtime, "dialtone_runtime_sessions_stream_lost_total") == 3, "stream_lost", runtime)
    assert metric(runtime, "dialtone_runtime_sessions_parked_total") == 3
    await until(lambda: len(servicer.requests) == 3, "the hangup transitions' calls", runtime)
    assert sorted((r.service, r.method, r.payload_json) for r in servicer.requests) == [
        ("crm", "log", '{"why": "stream_lost"}')] * 3
    late = Stream(runtime.address)
    await late.send(resume("a0", last_event_seq=1, last_action_seq=2))
    (hangup,) = await late.read(1)  # not the timer's "timer fired": it never fired
    assert hangup.hangup.reason == "stream_lost" and hangup.seq == 3
    assert await late.call.read() is grpc.aio.EOF
    await late.close()
    assert metric(runtime, "dialtone_runtime_active_streams") == 0


async def test_call_resumed_in_time_is_unparked_and_its_timer_fires(tmp_path, gateway, dialogs, start_service) -> None:
    """A stream dropped and resumed within orphan_timeout_s: the call goes on where it was, the timer that
    came due while it was parked firing on the resumed stream."""
    runtime = start_service("conversation-runtime", env=runtime_env(tmp_path, gateway[1], dialogs))
    stream = Stream(runtime.address)
    await stream.send(call_started("b1", dialog="orphan"))
    assert kinds(await stream.read(2)) == ["state_changed", "say"]
    await stream.channel.close()
    await until(lambda: log_count(runtime, "stream closed before the call ended: parked") == 1, "parking", runtime)
    resumed = Stream(runtime.address)
    await resumed.send(resume("b1", last_event_seq=1, last_action_seq=2))
    actions = await resumed.read(3)
    assert kinds(actions) == ["state_changed", "say", "hangup"] and actions[1].say.text == "timer fired"
    assert actions[2].hangup.reason == "timer"
    await resumed.close()


async def test_dialog_that_would_freeze_the_runtime_is_refused_at_start(tmp_path, gateway, dialogs,
                                                                         start_service) -> None:
    """A 30^3 comprehension (12 s of blocked event loop before) stops the runtime at start, exit 2, with
    the condition's file:line:col."""
    (dialogs / "freezer.yaml").write_text(FREEZER)
    runtime = start_service("conversation-runtime", env=runtime_env(tmp_path, gateway[1], dialogs), wait=False)
    assert runtime.proc.wait(60) == 2
    assert f"{dialogs / 'freezer.yaml'}:9:22: condition: more than 2 comprehensions" in runtime.log_text()


async def test_costly_condition_gives_up_at_its_budget_and_the_call_goes_on(runtime) -> None:
    """Two comprehensions over 300 values (90,000 pairs): the condition stops at its step budget and is
    false, the next transition is taken, and another call is served meanwhile."""
    stream = Stream(runtime.address)
    await stream.send(call_started("g1", dialog="budget"))
    assert kinds(await stream.read(2)) == ["state_changed", "say"]
    await stream.send(pb.SpeechEvent(session_id="g1", seq=2, dtmf=common_pb2.Dtmf(digit="1")))
    actions = await stream.read(2)
    assert actions[0].state_changed.state == "gave_up" and actions[1].hangup.reason == "gave_up"
    await stream.close()
    other = Stream(runtime.address)
    await other.send(call_started("g2"))
    assert kinds(await other.read(2)) == ["state_changed", "say"]
    await other.close()
    assert log_count(runtime, "expression 'r.all(a, r.all(b, a + b >= 0))' gave up after 10000 steps") == 1


def test_runtime_accepts_what_the_speech_gateway_forwards() -> None:
    """A CallInfo at every limit passes the speech gateway's edge check and the runtime's; one character
    over any of them is refused by both (one table, dialtone.common.call_limits), so nothing the
    gateway forwards is refused mid-call."""
    from dialtone.common import call_limits as lim
    from dialtone.speech_gateway import validation as gw
    from dialtone.v1 import speech_gateway_pb2 as spb

    header_value = "v" * lim.MAX_HEADER_VALUE
    fields = {"dialog": "d" * lim.MAX_DIALOG_NAME, "caller": "c" * lim.MAX_URI, "callee": "e" * lim.MAX_URI,
              "call_id": "i" * lim.MAX_CALL_ID}
    headers = [common_pb2.SipHeader(name=f"X-{i:03d}", value=header_value[: lim.MAX_HEADER_CHARS // 16 - 5])
               for i in range(16)]

    def both(info: common_pb2.CallInfo) -> list[bool]:
        verdicts = []
        for check in (lambda: gw.check_call_start(spb.MediaUplink(session_id="s1", seq=1, call_start=spb.CallStart(
                call=info, sample_rate=16000))), lambda: convert.call_info(pb.CallStarted(call=info))):
            try:
                check()
                verdicts.append(True)
            except InvalidArgument:
                verdicts.append(False)
        return verdicts

    assert both(common_pb2.CallInfo(headers=headers, **fields)) == [True, True]
    for name in fields:
        assert both(common_pb2.CallInfo(**{**fields, name: fields[name] + "x"})) == [False, False], name
    too_many = [common_pb2.SipHeader(name=f"X-{i}", value="v") for i in range(lim.MAX_HEADERS + 1)]
    assert both(common_pb2.CallInfo(headers=too_many)) == [False, False]

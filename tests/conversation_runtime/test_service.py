"""The gRPC service in-process, against a real grpc.aio IntegrationGateway servicer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from dialtone.common.config import ConfigError
from dialtone.common.server import create_server
from dialtone.conversation_runtime.config import (
    ConversationRuntimeConfig,
    RouteConfig,
    StoreConfig,
)
from dialtone.conversation_runtime.service import ConversationRuntimeApp
from dialtone.v1 import common_pb2
from dialtone.v1 import conversation_runtime_pb2 as pb

from tests.conversation_runtime.support import (
    Stream,
    call_started,
    dtmf,
    kinds,
    resume,
    start_gateway,
    transcript,
)
from tests.helpers import free_port


@pytest.fixture
async def gateway():
    server, servicer, address = await start_gateway()
    yield servicer, address
    await server.stop(0)


async def start_runtime(config: ConversationRuntimeConfig):
    config.grpc.port = 0  # a free port: a runtime of `dialtone up` may hold the default one
    app = ConversationRuntimeApp(config)
    running, port = create_server(config, app)
    await app.start()
    await running.server.start()
    return app, running, f"127.0.0.1:{port}"


@pytest.fixture
async def runtime(tmp_path: Path, gateway):
    config = ConversationRuntimeConfig(integration_address=gateway[1],
                                       store=StoreConfig(path=str(tmp_path / "sessions.sqlite3")),
                                       routes=[RouteConfig(dialog="dtmf_menu", number="2000"),
                                               RouteConfig(dialog="appointment_booking", header="X-Queue",
                                                           value="booking")],
                                       reload_interval_s=0)
    app, running, address = await start_runtime(config)
    yield address
    await running.server.stop(0)
    await app.close()


async def test_order_status_call_end_to_end(runtime, gateway) -> None:
    """Speech in, a backend call out through the gateway, the status said, then hang up."""
    servicer, _ = gateway
    stream = Stream(runtime)
    await stream.send(call_started("c1"))
    first = await stream.read(3)
    assert kinds(first) == ["state_changed", "say", "say"]
    assert first[0].state_changed.dialog == "order_status" and first[0].state_changed.state == "greet"
    assert first[1].say.barge_in.mode == common_pb2.BARGE_IN_MODE_OFF
    assert [a.seq for a in first] == [1, 2, 3]
    assert first[1].idempotency_key == "c1:1:1" and first[1].say.utterance_id == "c1:1:1"
    await stream.send(transcript("c1", 2, "my order is 12345"))
    actions = await stream.read(5)
    assert kinds(actions) == ["state_changed", "say", "state_changed", "say", "hangup"]
    assert "Order 12345 is shipped" in actions[3].say.text and actions[4].hangup.reason == "completed"
    (request,) = servicer.requests
    assert request.service == "orders" and request.method == "get_status"
    assert request.payload_json == '{"order_id": "12345"}' and request.idempotency_key == "c1:2:2"
    assert await stream.call.read() is grpc.aio.EOF
    await stream.close()


@pytest.mark.parametrize(("first", "message"), [
    (pb.SpeechEvent(session_id="", seq=1, call_started=pb.CallStarted()), "session_id is required"),
    (pb.SpeechEvent(session_id="c2", seq=1, dtmf=common_pb2.Dtmf(digit="1")), "must begin with call_started"),
    (call_started("c3", dialog="nope"), "unknown dialog 'nope'"),
    (resume("never-started", 0, 0), "is unknown"),
])
async def test_malformed_first_event_is_invalid_argument(runtime, first, message) -> None:
    """A stream that starts wrong gets INVALID_ARGUMENT with the reason."""
    stream = Stream(runtime)
    await stream.send(first)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.read(1)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    await stream.close()


@pytest.mark.parametrize(("event", "message"), [
    (dtmf("c4", 2, "x"), "dtmf digit 'x'"),
    (pb.SpeechEvent(session_id="c4", seq=2, transcript=pb.Transcript(text="a", is_final=True, confidence=7)),
     "confidence must be 0..1"),
    (pb.SpeechEvent(session_id="c4", seq=2), "no payload"),
    (dtmf("other", 2, "1"), "does not match"),
])
async def test_malformed_event_mid_call_is_invalid_argument(runtime, event, message) -> None:
    """A malformed event in a running call gets INVALID_ARGUMENT; the session stays resumable."""
    stream = Stream(runtime)
    await stream.send(call_started("c4"))
    await stream.read(3)
    await stream.send(event)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.read(1)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    await stream.close()
    again = Stream(runtime)
    await again.send(resume("c4", 1, 3))
    await again.send(dtmf("c4", 2, "0"))
    assert "transfer" in kinds(await again.read_until("transfer"))
    await again.close()


@pytest.mark.parametrize(("kwargs", "dialog"), [
    ({"callee": "2000"}, "dtmf_menu"),
    ({"headers": {"x-queue": "booking"}}, "appointment_booking"),
    ({"callee": "2000", "dialog": "order_status"}, "order_status"),
    ({"callee": "9999"}, "order_status"),
])
async def test_routing(runtime, kwargs, dialog) -> None:
    """Dialed number, then SIP header, pick the dialog; CallStart.dialog overrides; else the default."""
    stream = Stream(runtime)
    await stream.send(call_started("r1", **kwargs))
    (first,) = await stream.read(1)
    assert first.state_changed.dialog == dialog
    await stream.close()


async def test_resume_resends_only_missed_actions(runtime) -> None:
    """A reconnecting stream gets the actions after its last_action_seq, and repeated events are ignored."""
    stream = Stream(runtime)
    await stream.send(call_started("c5"))
    await stream.read(3)
    await stream.close()
    again = Stream(runtime)
    await again.send(resume("c5", 1, 1))
    missed = await again.read(2)
    assert [a.seq for a in missed] == [2, 3]
    await again.send(dtmf("c5", 1, "0"))  # already applied seq: ignored
    await again.send(dtmf("c5", 2, "0"))
    actions = await again.read_until("transfer")
    assert actions[0].seq == 4 and actions[0].state_changed.state == "agent"
    await again.close()


def test_bad_dialog_or_route_refuses_to_start(tmp_path: Path) -> None:
    """A wrong dialog, or a route to a dialog not loaded, stops the runtime before it serves."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("dialog:\n  name: x\n  initial: nowhere\n  states: {a: {on_enter: [{hangup: x}]}}\n")
    with pytest.raises(ConfigError, match="bad.yaml:3:12: initial state 'nowhere' does not exist"):
        ConversationRuntimeApp(ConversationRuntimeConfig(dialogs=[str(bad)], default_dialog="x"))
    with pytest.raises(ConfigError, match="dialog 'ghost' is not loaded"):
        ConversationRuntimeApp(ConversationRuntimeConfig(routes=[RouteConfig(dialog="ghost", number="1")]))


async def test_hot_reload_keeps_last_good_and_calls_keep_their_version(tmp_path: Path, gateway) -> None:
    """A broken edit is refused and the last good version serves; a good edit serves new calls only."""
    folder = tmp_path / "dialogs"
    folder.mkdir()
    dialog = folder / "hello.yaml"
    dialog.write_text(HELLO.replace("GREETING", "hello one"))
    config = ConversationRuntimeConfig(integration_address=gateway[1], dialogs=[str(folder)],
                                       default_dialog="hello", store=StoreConfig(path=str(tmp_path / "s.db")),
                                       reload_interval_s=0)
    app, running, address = await start_runtime(config)
    try:
        old_call = Stream(address)
        await old_call.send(call_started("h1"))
        assert (await old_call.read(2))[1].say.text == "hello one"
        dialog.write_text(HELLO.replace("target: hello", "target: nowhere"))
        assert app.registry.reload() == []
        new_call = Stream(address)
        await new_call.send(call_started("h2"))
        assert (await new_call.read(2))[1].say.text == "hello one"
        dialog.write_text(HELLO.replace("GREETING", "hello two"))
        assert [d.name for d in app.registry.reload()] == ["hello"]
        third = Stream(address)
        await third.send(call_started("h3"))
        assert (await third.read(2))[1].say.text == "hello two"
        await old_call.send(transcript("h1", 2, "again"))
        assert (await old_call.read(2))[1].say.text == "hello one"
        for stream in (old_call, new_call, third):
            await stream.close()
    finally:
        await running.server.stop(0)
        await app.close()


HELLO = """\
dialog:
  name: hello
  initial: hello
  states:
    hello:
      on_enter: [{say: "GREETING"}]
      transitions:
        - event: speech
          target: hello
"""


async def test_timer_fires_on_the_stream(runtime) -> None:
    """No input for the state's timeout after the prompt ends re-prompts on the open stream (wall clock)."""
    stream = Stream(runtime)
    await stream.send(call_started("t1", dialog="dtmf_menu"))
    _, say = await stream.read(2)
    await stream.send(pb.SpeechEvent(session_id="t1", seq=2, playback_finished=common_pb2.PlaybackFinished(
        utterance_id=say.say.utterance_id)))
    (reprompt,) = await asyncio.wait_for(stream.read(1), 15)
    assert reprompt.say.text.startswith("Sorry, I did not get that. For sales press 1")  # the reprompt
    assert reprompt.seq == 3
    await stream.close()


async def test_store_down_is_unavailable(tmp_path: Path, gateway) -> None:
    """With the store unreachable a call gets UNAVAILABLE (so the gateway resumes it elsewhere)."""
    config = ConversationRuntimeConfig(integration_address=gateway[1], reload_interval_s=0,
                                       store=StoreConfig(kind="redis", url=f"redis://127.0.0.1:{free_port()}/0"))
    app, running, address = await start_runtime(config)
    try:
        stream = Stream(address)
        await stream.send(call_started("down1"))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream.read(1)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "session store is unavailable" in info.value.details()
        await stream.close()
    finally:
        await running.server.stop(0)
        await app.close()


async def test_resume_on_a_replica_with_a_newer_dialog_keeps_the_call_version(tmp_path: Path, gateway) -> None:
    """A replica that only loaded version 2 continues a version-1 call on version 1 (source from the store)."""
    folder = tmp_path / "dialogs"
    folder.mkdir()
    dialog = folder / "hello.yaml"
    dialog.write_text(HELLO.replace("GREETING", "version one"))
    config = ConversationRuntimeConfig(integration_address=gateway[1], dialogs=[str(folder)],
                                       default_dialog="hello", store=StoreConfig(path=str(tmp_path / "s.db")),
                                       reload_interval_s=0)
    app_a, running_a, address_a = await start_runtime(config)
    try:
        stream = Stream(address_a)
        await stream.send(call_started("v1"))
        assert (await stream.read(2))[1].say.text == "version one"
        await stream.close()
    finally:
        await running_a.server.stop(0)
        await app_a.close()
    dialog.write_text(HELLO.replace("GREETING", "version two"))
    app_b, running_b, address_b = await start_runtime(config)
    try:
        moved = Stream(address_b)
        await moved.send(resume("v1", 1, 2))
        await moved.send(transcript("v1", 2, "again"))
        assert (await moved.read(2))[1].say.text == "version one"
        fresh = Stream(address_b)
        await fresh.send(call_started("v2"))
        assert (await fresh.read(2))[1].say.text == "version two"
        for s in (moved, fresh):
            await s.close()
    finally:
        await running_b.server.stop(0)
        await app_b.close()


async def test_reload_loop_picks_up_an_edit_and_stores_it(tmp_path: Path, gateway) -> None:
    """The periodic reload sees an edited file and keeps the new version's source in the store."""
    folder = tmp_path / "dialogs"
    folder.mkdir()
    dialog = folder / "hello.yaml"
    dialog.write_text(HELLO.replace("GREETING", "one"))
    config = ConversationRuntimeConfig(integration_address=gateway[1], dialogs=[str(folder)],
                                       default_dialog="hello", store=StoreConfig(path=str(tmp_path / "s.db")),
                                       reload_interval_s=0.1)
    app, running, _ = await start_runtime(config)
    try:
        first = app.registry.current("hello").version
        dialog.write_text(HELLO.replace("GREETING", "a longer greeting"))
        for _ in range(100):
            if app.registry.current("hello").version != first:
                break
            await asyncio.sleep(0.1)
        second = app.registry.current("hello").version
        assert second != first
        for _ in range(100):
            if await app.store.get_dialog(second) is not None:
                break
            await asyncio.sleep(0.1)
        assert (await app.store.get_dialog(second))[1] == dialog.read_text()
    finally:
        await running.server.stop(0)
        await app.close()


async def test_resume_while_the_old_stream_is_still_open_takes_over(runtime) -> None:
    """A resumed stream on the same replica ends the old stream first; actions go out once, on the new one."""
    old = Stream(runtime)
    await old.send(call_started("o1"))
    await old.read(3)
    new = Stream(runtime)
    await new.send(resume("o1", 1, 3))
    await new.send(dtmf("o1", 2, "0"))
    actions = await new.read_until("transfer")
    assert [a.seq for a in actions] == [4, 5, 6]
    assert await asyncio.wait_for(old.call.read(), 30) is grpc.aio.EOF
    for stream in (old, new):
        await stream.close()


async def test_event_is_reapplied_when_another_replica_moved_the_session_on(tmp_path: Path, gateway) -> None:
    """The save is a compare-and-set: a session changed elsewhere is re-read, the event applied to it, and
    the stream gets what the other replica issued, then the event's actions, each once."""
    from dialtone.conversation_runtime.core import engine
    from dialtone.conversation_runtime.core import events as ev

    config = ConversationRuntimeConfig(integration_address=gateway[1], reload_interval_s=0,
                                       store=StoreConfig(path=str(tmp_path / "s.db")))
    app, running, address = await start_runtime(config)
    try:
        stream = Stream(address)
        await stream.send(call_started("x1", dialog="dtmf_menu"))
        await stream.read(2)
        stored = await app.store.load("x1")
        dialog = app.registry.current("dtmf_menu")
        elsewhere, _ = engine.handle(dialog, stored, ev.DtmfPressed("2"), stored.started_at + 1, seq=2)
        assert await app.store.save(elsewhere, expected_step=stored.step)
        await stream.send(dtmf("x1", 3, "1"))
        actions = await stream.read_until("transfer")
        texts = [a.say.text for a in actions]
        assert texts.index("For internet press 1. For phone press 2. To go back press star.") < texts.index(
            "Connecting you to internet support.")
        assert [a.seq for a in actions] == list(range(3, 3 + len(actions)))  # the other replica's two first
        await stream.close()
    finally:
        await running.server.stop(0)
        await app.close()


async def test_a_flood_of_events_is_applied_in_order_through_a_bounded_queue(runtime) -> None:
    """Thousands of events sent at once are all applied, in order; the last one still acts."""
    stream = Stream(runtime)
    await stream.send(call_started("f1"))
    await stream.read(3)
    for seq in range(2, 2002):
        await stream.send(pb.SpeechEvent(session_id="f1", seq=seq, speech_started=pb.SpeechStarted()))
    await stream.send(dtmf("f1", 2002, "0"))
    actions = await stream.read_until("transfer", timeout=60)
    assert actions[0].state_changed.state == "agent" and actions[0].seq == 4
    await stream.close()


HANGUP_LOG = """\
dialog:
  name: logged
  initial: wait
  states:
    wait:
      on_enter: [{say: "waiting"}]
      transitions:
        - event: hangup
          actions:
            - call: {service: crm, method: log, payload: {why: '${reason}'}}
        - event: backend.result
          target: wait
"""


async def test_caller_hangup_handler_calls_reach_the_backend(tmp_path: Path, gateway) -> None:
    """The call a hangup transition makes reaches the integration gateway, although the stream ends
    with the call (it used to be cancelled with the stream's tasks)."""
    servicer, address = gateway
    folder = tmp_path / "dialogs"
    folder.mkdir()
    (folder / "logged.yaml").write_text(HANGUP_LOG)
    config = ConversationRuntimeConfig(integration_address=address, dialogs=[str(folder)], default_dialog="logged",
                                       store=StoreConfig(path=str(tmp_path / "s.db")), reload_interval_s=0)
    app, running, runtime_address = await start_runtime(config)
    try:
        stream = Stream(runtime_address)
        await stream.send(call_started("l1"))
        assert kinds(await stream.read(2)) == ["state_changed", "say"]
        await stream.send(pb.SpeechEvent(session_id="l1", seq=2, call_ended=pb.CallEnded(reason="caller")))
        assert await stream.call.read() is grpc.aio.EOF
        await stream.close()
        for _ in range(100):
            if servicer.requests:
                break
            await asyncio.sleep(0.05)
        assert [(r.service, r.method, r.payload_json) for r in servicer.requests] == [
            ("crm", "log", '{"why": "caller"}')]
    finally:
        await running.server.stop(0)
        await app.close()


async def test_a_provisional_transcript_is_previewed_and_changes_nothing(runtime, gateway) -> None:
    """The eager reply over the real stream: a new call first gets its dialog's fixed prompt openings; a
    provisional transcript gets a PrepareReply naming its seq, with what the dialog would say, and no
    action; the final transcript of the same words then takes the transition and says exactly that."""
    servicer, _ = gateway
    stream = Stream(runtime)
    try:
        await stream.send(call_started("c-eager"))
        assert kinds(await stream.read(3)) == ["state_changed", "say", "say"]
        (openings,) = stream.prepared
        assert openings.for_event_seq == 0 and "One moment while I look up order" in openings.texts
        await stream.send(pb.SpeechEvent(session_id="c-eager", seq=2, transcript=pb.Transcript(
            text="it is 8 3 9 2", is_final=False, provisional=True, confidence=0.9)))
        await stream.send(dtmf("c-eager", 3, "5"))   # a key in the slot's digit buffer: no action at once
        await stream.send(transcript("c-eager", 4, "it is 8 3 9 2"))
        actions = await stream.read(2)
        assert kinds(actions) == ["state_changed", "say"]
        eager = stream.prepared[1]
        assert eager.for_event_seq == 2 and list(eager.texts) == [actions[1].say.text]
        assert actions[1].say.text == "One moment while I look up order 8392."
        assert actions[0].seq == 4   # the preview issued no action (seq 1-3: the call's first three)
    finally:
        await stream.close()
    assert [r.payload_json for r in servicer.requests] in ([], ['{"order_id": "8392"}'])

"""The dialog FSM: deterministic, timers as deadlines, escalation, digits, handlers, barge-in."""

from __future__ import annotations

from pathlib import Path

from dialtone.conversation_runtime.core import engine
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core.loader import load_dialog, load_dialog_text
from dialtone.conversation_runtime.core.session import Session

EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "conversation_runtime" / "examples"
CALL = ev.CallInfo(caller="sip:alice@127.0.0.1", callee="1000", headers=(("X-Tier", "gold"),))


def order_status():
    return load_dialog(Path(__file__).parent / "data" / "order_status_transitions.yaml")


def replay(dialog, log):
    """Run an event log [(now, event)] from a fresh session; return every action and the session."""
    session, actions = engine.start(dialog, "s1", CALL, 0.0)
    out = list(actions)
    for seq, (now, event) in enumerate(log, start=1):
        session, actions = engine.handle(dialog, session, event, now, seq=0 if isinstance(event, ev.Tick) else seq)
        out += actions
    return out, session


def test_same_event_log_gives_same_actions() -> None:
    """Replaying one event log twice (on two loads of the dialog) gives identical actions and session."""
    log = [(1.0, ev.SpeechStarted()), (2.0, ev.SpeechResult("um", 0.4)), (9.5, ev.Tick()),
           (10.0, ev.DtmfPressed("1")), (10.5, ev.DtmfPressed("2")), (11.0, ev.DtmfPressed("3")),
           (11.2, ev.DtmfPressed("4")), (11.4, ev.DtmfPressed("#"))]
    first, session_a = replay(order_status(), log)
    second, session_b = replay(order_status(), log)
    assert first == second
    assert session_a.to_json() == session_b.to_json()
    assert any(a.kind == "call" and a.data["payload"] == {"order_id": "1234"} for a in first)


def test_session_round_trips_through_json_mid_call() -> None:
    """A session saved and loaded mid-call continues exactly as the one kept in memory."""
    dialog = order_status()
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, _ = engine.handle(dialog, session, ev.DtmfPressed("5"), 1.0, seq=1)
    restored = Session.from_json(session.to_json())
    a = engine.handle(dialog, session, ev.DtmfPressed("6"), 2.0, seq=2)
    b = engine.handle(dialog, restored, ev.DtmfPressed("6"), 2.0, seq=2)
    assert a[1] == b[1]
    assert a[0].to_json() == b[0].to_json()


def test_repeated_event_seq_changes_nothing() -> None:
    """An event re-sent by a resumed stream (seq already applied) issues no action."""
    dialog = order_status()
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.DtmfPressed("0"), 1.0, seq=5)
    assert any(a.kind == "transfer" for a in actions)
    again, actions = engine.handle(dialog, session, ev.DtmfPressed("0"), 1.5, seq=5)
    assert actions == [] and again is session


def finished(session: Session) -> ev.PlaybackFinished:
    """The speech gateway reporting that the prompts issued so far have played."""
    return ev.PlaybackFinished(session.playing[-1])


def test_timers_are_deadlines_fired_at_their_own_time() -> None:
    """No input for 6 s after the prompts: next_deadline says when; a late tick acts as if on time."""
    dialog = order_status()
    session, _ = engine.start(dialog, "s1", CALL, 100.0)
    assert "no_input" not in session.timers  # not while the greeting plays
    session, _ = engine.handle(dialog, session, finished(session), 101.0, seq=1)
    assert session.next_deadline() == 107.0
    unchanged, actions = engine.handle(dialog, session, ev.Tick(), 106.9)
    assert actions == [] and unchanged is session
    late, actions = engine.handle(dialog, session, ev.Tick(), 108.5)
    assert late.state == "reprompt" and late.entered_at == 107.0
    assert "no_input" not in late.timers and late.playing == [actions[-1].key]


def test_no_input_escalates_first_then_default() -> None:
    """The 1st no_input reprompts, the 2nd (the default handler) goes to the agent."""
    dialog = order_status()
    session, out = engine.start(dialog, "s1", CALL, 0.0)
    session, _ = engine.handle(dialog, session, finished(session), 1.0, seq=1)
    session, actions = engine.handle(dialog, session, ev.Tick(), 7.0)
    out += actions
    session, _ = engine.handle(dialog, session, finished(session), 9.0, seq=2)
    session, actions = engine.handle(dialog, session, ev.Tick(), 15.0)
    out += actions
    states = [a.data["state"] for a in out if a.kind == "state_changed"]
    assert states == ["greet", "reprompt", "agent"]
    assert session.no_input_count == 2


def test_speech_stops_the_no_input_timer_until_it_ends() -> None:
    """While the caller talks no no_input fires; when the speech comes to nothing, silence counts again."""
    dialog = order_status()
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, _ = engine.handle(dialog, session, finished(session), 1.0, seq=1)
    assert session.timers["no_input"] == 7.0
    session, _ = engine.handle(dialog, session, ev.SpeechStarted(), 5.0, seq=2)
    assert "no_input" not in session.timers
    session, _ = engine.handle(dialog, session, ev.Tick(), 20.0)
    assert session.state == "greet"
    session, _ = engine.handle(dialog, session, ev.SpeechEnded(), 21.0, seq=3)
    session, _ = engine.handle(dialog, session, ev.Tick(), 27.0)
    assert session.state == "reprompt"


def test_digit_collection_finishes_on_max_and_inter_digit_timeout() -> None:
    """Six keys finish at once; fewer finish after the inter-digit timeout."""
    dialog = order_status()
    out, session = replay(dialog, [(1.0 + i * 0.1, ev.DtmfPressed(d)) for i, d in enumerate("123456")])
    assert session.state == "lookup" and session.variables["order_id"] == "123456"
    out, session = replay(dialog, [(1.0, ev.DtmfPressed("9")), (1.5, ev.DtmfPressed("8")),
                                   (2.0, ev.DtmfPressed("7")), (2.5, ev.DtmfPressed("6")), (5.5, ev.Tick())])
    assert session.state == "lookup" and session.variables["order_id"] == "9876"


def test_menu_key_before_digits_takes_the_dialog_wide_handler() -> None:
    """In a state collecting digits, 0 as the first key reaches the dialog-wide agent handler."""
    out, session = replay(order_status(), [(1.0, ev.DtmfPressed("0"))])
    assert session.state == "agent"
    assert [a.data for a in out if a.kind == "transfer"] == [{"target_uri": "sip:agent@127.0.0.1"}]


def test_say_carries_barge_in_policy() -> None:
    """The disclosure plays with barge-in off; the question with the state's policy (on)."""
    session, actions = engine.start(order_status(), "s1", CALL, 0.0)
    says = [a.data for a in actions if a.kind == "say"]
    assert says[0]["barge_in"] == {"mode": "off", "min_words": 0}
    assert says[1]["barge_in"] == {"mode": "on", "min_words": 0}
    assert all(a.key == f"s1:1:{i}" for i, a in enumerate(actions))
    assert [a.seq for a in actions] == [1, 2, 3]


def test_backend_error_kind_reaches_the_dialog() -> None:
    """A backend.result error is visible to conditions as result.error.kind."""
    dialog = load_dialog(EXAMPLES / "appointment_booking.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    for seq, text in enumerate(["Monday", "9", "yes"], start=1):
        session, actions = engine.handle(dialog, session, ev.SpeechResult(text), float(seq), seq=seq)
    (call,) = [a for a in actions if a.kind == "call"]
    assert session.pending_calls == {call.key: call.data}
    session, actions = engine.handle(dialog, session, ev.BackendResult(call.key, False, 409, None, "http_error"),
                                     5.0, seq=10)
    assert session.state == "slot_taken" and session.pending_calls == {}


def test_caller_hangup_ends_the_session() -> None:
    """After the caller hangs up nothing more happens, timers included."""
    dialog = order_status()
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.CallerHungUp("bye"), 1.0, seq=1)
    assert session.ended and session.timers == {} and actions == []
    assert engine.handle(dialog, session, ev.Tick(), 100.0)[1] == []


DEAD_AIR = """\
dialog:
  name: watchdog
  initial: wait
  max_duration: 60s
  dead_air: 10s
  states:
    wait:
      on_enter: [{say: "hi ${call.headers['X-Tier']}"}]
      transitions:
        - event: speech
          target: wait
"""


def test_dead_air_and_max_duration_hang_up() -> None:
    """Dead air hangs up after 10 s with nothing played or awaited; call info (X-* headers) reaches templates."""
    dialog = load_dialog_text(DEAD_AIR, "w.yaml")
    session, actions = engine.start(dialog, "s1", CALL, 0.0)
    assert actions[1].data["text"] == "hi gold"
    session, actions = engine.handle(dialog, session, ev.Tick(), 10.0)
    assert actions == [] and session.timers["dead_air"] == 20.0  # a prompt is playing: not dead air
    session, _ = engine.handle(dialog, session, finished(session), 12.0, seq=1)
    session, actions = engine.handle(dialog, session, ev.Tick(), 22.0)
    assert [a.data for a in actions if a.kind == "hangup"] == [{"reason": "dead_air"}]
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    for i in range(1, 8):  # speech every 9 s keeps dead air away; max duration still ends it
        session, actions = engine.handle(dialog, session, ev.SpeechResult("x"), i * 9.0, seq=i)
    assert session.ended and session.end_reason == "max_duration"


def test_actions_after_gives_only_what_the_client_missed() -> None:
    """Resume: actions up to last_action_seq are not re-sent; later ones are."""
    session, actions = engine.start(order_status(), "s1", CALL, 0.0)
    assert [a.seq for a in engine.actions_after(session, 1)] == [2, 3]
    assert engine.actions_after(session, 3) == []


def test_variables_only_set_start_as_null() -> None:
    """A variable that is only ever `set` exists from the start, as null."""
    dialog = order_status()
    assert dialog.variables["status"] is None and dialog.variables["attempts"] == 0
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    assert session.variables["eta"] is None


def test_core_imports_no_io_library() -> None:
    """The core is sans-I/O: importing it pulls in no asyncio, grpc, redis or sqlite3."""
    import subprocess
    import sys

    code = ("import sys; import dialtone.conversation_runtime.core.engine, dialtone.conversation_runtime.core.loader;"
            "print(sorted(m for m in ('asyncio', 'grpc', 'redis', 'sqlite3', 'socket') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


HANDLED = """\
dialog:
  name: handled
  initial: ask
  variables: {log: ""}
  states:
    ask:
      on_enter: [{say: "yes or no?"}]
      transitions:
        - event: speech
          condition: 'transcript == "yes"'
          target: bye
        - event: hangup
          actions:
            - set: {log: '"hung up in ask: " + reason'}
            - call: {service: crm, method: log, payload: {note: '${log}'}}
        - event: backend.result
          target: bye
    bye:
      on_enter: [{hangup: done}]
"""


def test_unhandled_events_change_nothing() -> None:
    """An event no transition takes issues nothing and leaves the state (only no_match counts)."""
    dialog = load_dialog_text(HANDLED, "h.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    for seq, event in enumerate([ev.PlaybackFinished("other"), ev.DtmfPressed("5"), ev.SpeechResult("maybe"),
                                 ev.BackendResult("not-pending", True), ev.TransferResult("sip:x@y", True)], 1):
        session, actions = engine.handle(dialog, session, event, float(seq), seq=seq)
        assert actions == [] and session.state == "ask"
    assert session.no_match_count == 2


def test_caller_hangup_runs_its_handler_actions() -> None:
    """A hangup transition may set variables and call a backend (with the event's reason) as the call ends."""
    dialog = load_dialog_text(HANDLED, "h.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.CallerHungUp("busy"), 1.0, seq=1)
    assert session.ended and session.variables["log"] == "hung up in ask: busy"
    assert [(a.kind, a.data["payload"]) for a in actions] == [("call", {"note": "hung up in ask: busy"})]


def test_barge_in_clears_the_queued_prompts() -> None:
    """An interrupted first prompt ends the queue behind it too, so silence is timed again."""
    dialog = order_status()
    session, actions = engine.start(dialog, "s1", CALL, 0.0)
    assert session.playing == [actions[1].key, actions[2].key]
    session, _ = engine.handle(dialog, session, ev.PlaybackFinished(actions[1].key), 1.0, seq=1)
    assert session.playing == [actions[2].key] and "no_input" not in session.timers
    session, _ = engine.handle(dialog, session, ev.PlaybackFinished(actions[2].key, interrupted=True), 2.0, seq=2)
    assert session.playing == [] and session.timers["no_input"] == 8.0


def test_playback_finished_means_the_last_prompt_ended_once() -> None:
    """playback.finished fires when the last queued prompt ends, once; an earlier or repeated report does not."""
    dialog = order_status()
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.SpeechResult("12345"), 1.0, seq=1)
    (call,) = [a for a in actions if a.kind == "call"]
    one_moment = session.playing[-1]
    session, actions = engine.handle(dialog, session, ev.BackendResult(call.key, True, 200, {"status": "shipped",
                                                                                             "eta": "Monday"}),
                                     1.5, seq=2)
    status_prompt = actions[-1].key
    assert session.state == "tell_status" and session.playing[-2:] == [one_moment, status_prompt]
    session, actions = engine.handle(dialog, session, ev.PlaybackFinished(one_moment), 2.0, seq=3)
    assert actions == [] and session.state == "tell_status"  # the lookup's prompt, not the status
    again, actions = engine.handle(dialog, session, ev.PlaybackFinished(one_moment), 2.5, seq=4)
    assert actions == [] and again.state == "tell_status"
    session, actions = engine.handle(dialog, session, ev.PlaybackFinished(status_prompt), 6.0, seq=5)
    assert [a.kind for a in actions] == ["state_changed", "hangup"]


PARKING = """\
dialog:
  name: parking
  initial: wait
  max_duration: 10m
  states:
    wait:
      on_enter: [{say: "waiting"}]
      transitions:
        - event: timeout
          after: 2s
          target: later
        - event: hangup
          actions:
            - call: {service: crm, method: log, payload: {why: '${reason}'}}
        - event: backend.result
          target: later
    later:
      on_enter: [{say: "timer fired"}, {hangup: timer}]
"""


def test_parked_call_fires_nothing_then_ends_as_stream_lost() -> None:
    """A call without a stream fires no timer; at parked_until it ends as stream_lost, running its hangup
    transition, and leaves a Hangup for a stream that resumes too late."""
    dialog = load_dialog_text(PARKING, "p.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    parked = engine.park(session, 1.0, 60.0)
    assert parked.parked_until == 61.0 and parked.wake_at() == 61.0 and parked.step == session.step + 1
    still, actions = engine.handle(dialog, parked, ev.Tick(), 30.0)
    assert still is parked and actions == []  # the 2 s timer stays unfired
    ended, actions = engine.handle(dialog, parked, ev.Tick(), 61.0)
    assert ended.ended and ended.end_reason == "stream_lost" and ended.timers == {} and ended.wake_at() is None
    assert [(a.kind, a.data.get("payload", a.data.get("reason"))) for a in actions] == [
        ("call", {"why": "stream_lost"}), ("hangup", "stream_lost")]
    assert [a.kind for a in engine.actions_after(ended, session.action_seq)] == ["hangup"]


def test_parked_call_ends_by_max_duration_if_sooner() -> None:
    """A parked call ends no later than its dialog's max_duration (10 minutes here)."""
    dialog = load_dialog_text(PARKING, "p.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    assert engine.park(session, 1.0, 3600.0).parked_until == 600.0


def test_resumed_call_fires_the_timers_that_came_due_while_parked() -> None:
    """Unparked (a stream resumed it), or an event arriving: due timers fire at their own deadlines."""
    dialog = load_dialog_text(PARKING, "p.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    parked = engine.park(session, 1.0, 60.0)
    unparked = engine.unpark(parked)
    assert unparked.parked_until == 0.0 and unparked.step == parked.step + 1
    for after, actions in (engine.handle(dialog, unparked, ev.Tick(), 5.0),
                           engine.handle(dialog, parked, ev.SpeechStarted(), 5.0, seq=2)):
        assert after.parked_until == 0.0 and after.end_reason == "timer"
        assert [a.data.get("text") for a in actions if a.kind == "say"] == ["timer fired"]


DOUBLING = """\
dialog:
  name: doubling
  initial: a
  variables: {s: "ab", n: [1]}
  states:
    a:
      on_enter: [{say: "press keys"}]
      transitions:
        - event: dtmf
          actions:
            - set: {s: 's + s', n: '[n]'}
          target: a
"""


def test_set_keeps_values_bounded() -> None:
    """`set: {s: s + s}` on every key press stops growing at the variable limit (the set is refused,
    the variable keeps its last value), and so does a value nested ever deeper."""
    dialog = load_dialog_text(DOUBLING, "d.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    for seq in range(1, 41):
        session, _ = engine.handle(dialog, session, ev.DtmfPressed("1"), float(seq), seq=seq)
    assert engine.MAX_VARIABLE_CHARS // 2 <= len(session.variables["s"]) <= engine.MAX_VARIABLE_CHARS
    depth, value = 0, session.variables["n"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert depth == engine.MAX_VARIABLE_DEPTH
    assert len(session.to_json()) < 3 * engine.MAX_VARIABLE_CHARS


def test_a_preview_says_what_the_dialog_would_say_and_changes_nothing() -> None:
    """The eager reply's preview: the Say texts of the transition the words would take, before any backend
    answer; the session is as it was, and the real event afterwards says the same."""
    dialog = load_dialog(EXAMPLES / "order_status.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    before = session.to_json()
    said = engine.preview(dialog, session, ev.ProvisionalSpeech("it is 8 3 9 2", 0.9), 3.0)
    assert said == ["One moment while I look up order 8392."]
    assert session.to_json() == before
    _, actions = engine.handle(dialog, session, ev.SpeechResult("it is 8 3 9 2", 0.9), 3.2, seq=1)
    assert [a.data["text"] for a in actions if a.kind == "say"] == said
    # too few digits: the slot's reprompt, which is what the dialog would say too
    assert engine.preview(dialog, session, ev.ProvisionalSpeech("8 3", 0.9), 3.0) == [
        "Sorry, I did not get that. Please say or key in your order number, or press zero for an agent."]


def test_an_ended_session_previews_nothing() -> None:
    dialog = load_dialog(EXAMPLES / "order_status.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, _ = engine.handle(dialog, session, ev.CallerHungUp("caller"), 1.0, seq=1)
    assert session.ended
    assert engine.preview(dialog, session, ev.ProvisionalSpeech("8 3 9 2"), 2.0) == []


def test_fixed_prompt_openings_are_the_words_before_a_templates_first_value() -> None:
    dialog = load_dialog(EXAMPLES / "order_status.yaml")
    openings = engine.fixed_prompt_openings(dialog, 32)
    assert "One moment while I look up order" in openings
    assert "I could not find order" in openings
    assert "Welcome to Acme. This call may be recorded." not in openings   # fixed: the cache has it
    assert "Order" not in openings   # one word ("Order ${order_id} is ...") is not worth rendering alone
    assert len(engine.fixed_prompt_openings(dialog, 1)) == 1

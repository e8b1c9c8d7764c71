"""Dialog authoring (issue 14, the parts built so far): transitions that stay, transfer semantics,
"did you mean", and the test tool's delayed backend answers, checked answer fields, barge-in and
step names."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from dialtone.conversation_runtime.core import engine
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core.errors import DialogLoadError
from dialtone.conversation_runtime.core.loader import load_dialog_text
from dialtone.conversation_runtime.dialog_testing import run_test_file

CALL = ev.CallInfo(caller="sip:alice@127.0.0.1", callee="1000")

DIALOG = """\
dialog:
  name: t
  initial: menu
  variables: {presses: 0}
  max_duration: 10m
  input: {barge_in: "off"}
  states:
    menu:
      on_enter:
        - say: {text: "Press 1 for an agent.", barge_in: "on"}
      transitions:
        - event: dtmf
          condition: 'digit == "9"'
          actions: [{set: {presses: presses + 1}}, {say: "Still here."}]
        - event: dtmf
          condition: 'digit == "1"'
          target: agent
        - event: speech
          target: lookup
    lookup:
      on_enter:
        - say: "One moment."
        - call: {service: orders, method: get, payload: {}, timeout: 3s}
      transitions:
        - event: backend.result
          condition: result.ok
          target: found
        - event: backend.result
          target: agent
        - event: timeout
          after: 2s
          actions: [{say: "Still looking."}]
    found:
      on_enter:
        - say: "Found it."
        - hangup: found
    agent:
      on_enter:
        - say: "Connecting you."
        - transfer: "sip:agent@127.0.0.1"
      transitions:
        - event: transfer.result
          condition: '!transfer.ok'
          target: sorry
    sorry:
      on_enter:
        - say: "No agent is free."
        - hangup: no_agent
"""


def start():
    dialog = load_dialog_text(DIALOG, "t.yaml")
    session, actions = engine.start(dialog, "s1", CALL, 0.0)
    return dialog, session


def test_a_transition_without_target_runs_its_actions_and_stays() -> None:
    dialog, session = start()
    session, actions = engine.handle(dialog, session, ev.DtmfPressed("9"), 1.0, seq=1)
    assert session.state == "menu" and session.variables["presses"] == 1
    assert [a.data.get("text") for a in actions if a.kind == "say"] == ["Still here."]  # on_enter not re-run
    assert not any(a.kind == "state_changed" for a in actions)


def test_a_successful_transfer_ends_the_session_and_no_timer_fires_after() -> None:
    dialog, session = start()
    session, _ = engine.handle(dialog, session, ev.DtmfPressed("1"), 1.0, seq=1)
    session, actions = engine.handle(dialog, session, ev.TransferResult("sip:agent@127.0.0.1", True, 202), 2.0, seq=2)
    assert session.ended and session.end_reason == "transferred" and session.timers == {}
    assert engine.handle(dialog, session, ev.Tick(), 601.0)[1] == []   # max_duration does not fire later


def test_a_failed_transfer_is_the_dialogs_to_handle_or_ends_the_call() -> None:
    dialog, session = start()
    session, _ = engine.handle(dialog, session, ev.DtmfPressed("1"), 1.0, seq=1)
    session, actions = engine.handle(dialog, session, ev.TransferResult("sip:agent@127.0.0.1", False, 486), 2.0, seq=2)
    assert session.state == "sorry" and [a.data["reason"] for a in actions if a.kind == "hangup"] == ["no_agent"]
    unhandled = load_dialog_text(DIALOG.replace("""      transitions:
        - event: transfer.result
          condition: '!transfer.ok'
          target: sorry
""", "").replace("""    sorry:
      on_enter:
        - say: "No agent is free."
        - hangup: no_agent
""", ""), "t.yaml")
    session, _ = engine.start(unhandled, "s2", CALL, 0.0)
    session, _ = engine.handle(unhandled, session, ev.DtmfPressed("1"), 1.0, seq=1)
    session, actions = engine.handle(unhandled, session, ev.TransferResult("sip:a@h", False, 486), 2.0, seq=2)
    assert session.ended and [a.data["reason"] for a in actions if a.kind == "hangup"] == ["transfer_failed"]


@pytest.mark.parametrize(("change", "words"), [
    (("target: found", "target: fuond"), "target 'fuond' does not exist (did you mean 'found'?)"),
    (("event: speech", "event: speach"), "(did you mean 'speech'?)"),
    (('- say: "One moment."', '- sya: "One moment."'), "unknown action 'sya' (did you mean 'say'?)"),
])
def test_misspellings_get_a_suggestion(change, words) -> None:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(DIALOG.replace(*change), "t.yaml")
    assert any(words in e.message for e in info.value.errors), [str(e) for e in info.value.errors]


def run_cases(tmp_path: Path, cases: str, backends: str = "", dialog: str = DIALOG) -> list:
    (tmp_path / "t.yaml").write_text(dialog)
    test = tmp_path / "t.test.yaml"
    test.write_text("dialog: t.yaml\n" + textwrap.dedent(backends) + "cases:\n" + textwrap.indent(
        textwrap.dedent(cases), "  "))
    return run_test_file(test).cases


def test_a_delayed_backend_answer_covers_the_slow_path(tmp_path: Path) -> None:
    results = run_cases(tmp_path, """\
        - name: slow backend
          steps:
            - speech: "order 12"
            - expect: {state: lookup, said: "One moment"}
            - silence: 2s
            - expect: {said: "Still looking", state: lookup}
            - silence: 2s
            - expect: {state: found, hangup: found}
        """, """\
        backends:
          orders.get: {status: 200, body: {}, after: 3s}
        """)
    assert [(r.name, r.passed, r.message) for r in results] == [("slow backend", True, "")]


def test_a_misspelled_answer_field_is_refused_not_read_as_200(tmp_path: Path) -> None:
    results = run_cases(tmp_path, """\
        - steps:
            - speech: "order 12"
        """, """\
        backends:
          orders.get: {stauts: 404}
        """)
    assert not results[0].passed and "unknown field 'stauts' (did you mean 'status'?)" in results[0].message


def test_interrupt_cuts_a_prompt_that_allows_it_and_not_one_that_does_not(tmp_path: Path) -> None:
    case = """\
        - steps:
            - interrupt: "order 12"
            - expect: {state: STATE}
        """
    backends = """\
        backends:
          orders.get: {status: 200, body: {}, after: 3s}
        """
    allowed = run_cases(tmp_path, case.replace("STATE", "lookup"), backends)
    assert allowed[0].passed, allowed[0].message
    # the same words over a prompt that forbids barge-in are dropped, as the speech gateway drops them
    forbidden = DIALOG.replace('barge_in: "on"}', 'barge_in: "off"}')
    kept = run_cases(tmp_path, case.replace("STATE", "menu"), backends, forbidden)
    assert kept[0].passed, kept[0].message


def test_an_unknown_step_lists_every_step(tmp_path: Path) -> None:
    results = run_cases(tmp_path, """\
        - steps:
            - wiat: 2s
        """)
    message = results[0].message
    assert "unknown step 'wiat' (did you mean 'wait'?)" in message
    assert all(step in message for step in ("wait", "transfer_failed", "interrupt", "played"))


CEL_BASE = """\
dialog:
  name: c
  initial: ask
  variables: {confirm_fails: 0}
  states:
    ask:
      input: {digits: {max: 7}}
      on_enter: [{say: "Your number?"}]
      transitions:
        - event: digits
          condition: 'size(digits) == 7'
          target: done
        - event: dtmf
          condition: 'digit == "0"'
          target: done
        - event: no_match
          condition: 'confirm_fails >= 1'
          target: done
    done:
      on_enter: [{hangup: ok}]
"""


@pytest.mark.parametrize(("change", "kind", "line", "words"), [
    (("size(digits) == 7", "len(digits) == 7"), "unknown_function", 11,
     "unknown function 'len()' (did you mean 'size()'?)"),
    (('digit == "0"', "digit == 0"), "type_mismatch", 14,
     "'digit' is a string and 0 is a whole number, so '==' between them is never true: compare with \"0\""),
    (("confirm_fails >= 1", 'confirm_fails >= "1"'), "type_mismatch", 17,
     "'confirm_fails' is a whole number and \"1\" is a string"),
    (('on_enter: [{say: "Your number?"}]', 'on_enter: [{say: "Say ${digits.lenght()}"}]'), "unknown_variable", 8, ""),
    (('on_enter: [{say: "Your number?"}]', 'on_enter: [{say: "${confirm_fails.toUpperCase()}"}]'), "unknown_function",
     8, "unknown method '.toUpperCase()' (did you mean 'upper()'?)"),
])
def test_cel_mistakes_that_would_fail_silently_on_a_call_are_refused_at_their_line(change, kind, line, words) -> None:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(CEL_BASE.replace(*change), "c.yaml")
    matching = [e for e in info.value.errors if e.kind == kind]
    assert matching, [str(e) for e in info.value.errors]
    assert matching[0].line == line and words in matching[0].message, str(matching[0])


def test_the_correct_conditions_and_the_new_string_functions_load_and_work() -> None:
    dialog = load_dialog_text(CEL_BASE.replace('digit == "0"', 'upper(trim(" a ")) == "A" && digit == "0" && '
                                               'replace("a-b", "-", "") == "ab" && "x,y".split(",").size() == 2 && '
                                               'substring("hello", 1, 3) == "el"'), "c.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, _ = engine.handle(dialog, session, ev.DtmfPressed("0"), 1.0, seq=1)
    assert session.state == "done"


WARNED = """\
dialog:
  name: w
  initial: a
  states:
    a:
      input: {mode: dtmf}
      on_enter: [{say: hi}]
      transitions:
        - event: dtmf
          target: b
        - event: dtmf
          condition: 'digit == "1"'
          target: b
        - event: speech
          target: b
    b:
      on_enter: [{hangup: x}, {say: "bye"}]
"""


def test_warnings_do_not_refuse_the_dialog_and_name_their_line() -> None:
    dialog = load_dialog_text(WARNED, "w.yaml")
    found = {(w.kind, w.line) for w in dialog.warnings}
    assert found == {("shadowed_transition", 11), ("ignored_input", 14), ("action_after_end", 16)}
    assert not load_dialog_text(DIALOG, "t.yaml").warnings


def test_validate_json_lists_errors_and_warnings_and_spots_a_test_file(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    (tmp_path / "w.yaml").write_text(WARNED)
    (tmp_path / "bad.yaml").write_text(DIALOG.replace("target: found", "target: fuond"))
    (tmp_path / "w.test.yaml").write_text("dialog: w.yaml\ncases: []\n")
    done = subprocess.run([sys.executable, "-m", "dialtone", "dialog", "validate", "--format", "json",
                           *(str(tmp_path / n) for n in ("w.yaml", "bad.yaml", "w.test.yaml"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    diagnostics = json.loads(done.stdout)
    assert {(d["severity"], d["kind"]) for d in diagnostics} == {
        ("warning", "shadowed_transition"), ("warning", "ignored_input"), ("warning", "action_after_end"),
        ("error", "unknown_target"), ("error", "unreachable_state"), ("error", "test_file")}
    assert all({"file", "line", "col", "message", "state"} <= set(d) for d in diagnostics)
    assert next(d for d in diagnostics if d["kind"] == "test_file")["message"].startswith(
        "this is a conversation test file")


REPROMPT = """\
dialog:
  name: r
  initial: first
  variables: {limit: 3}
  handlers:
    - event: no_match
      count: 1
      target: $current
      actions: [{say: "Sorry, once more."}]
    - event: no_match
      target: bye
  states:
    first:
      on_enter: [{say: "First question?"}]
      transitions:
        - event: speech
          condition: 'transcript.endsWith("yes")'
          target: second
        - event: speech
          condition: 'result.ok'
          target: bye
    second:
      on_enter: [{say: "Second question?"}]
      transitions:
        - event: speech
          condition: 'transcript == "no"'
          target: bye
    bye:
      on_enter: [{hangup: done}]
"""


def test_a_handler_can_send_the_call_back_to_whichever_state_it_is_in() -> None:
    dialog = load_dialog_text(REPROMPT.replace("""        - event: speech
          condition: 'result.ok'
          target: bye
""", ""), "r.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.SpeechResult("maybe"), 1.0, seq=1)
    assert session.state == "first"
    assert [a.data["text"] for a in actions if a.kind == "say"] == ["Sorry, once more.", "First question?"]
    session, _ = engine.handle(dialog, session, ev.SpeechResult("oh yes"), 2.0, seq=2)
    session, actions = engine.handle(dialog, session, ev.SpeechResult("hmm"), 3.0, seq=3)
    assert session.state == "second"
    assert [a.data["text"] for a in actions if a.kind == "say"] == ["Sorry, once more.", "Second question?"]


def test_a_condition_that_cannot_be_computed_is_reported_with_its_line(tmp_path: Path) -> None:
    """`result.ok` in a speech transition has no `result`: on a call it is false, and the runtime
    and the test tool say where."""
    with pytest.raises(DialogLoadError):  # refused at load: result is not a name of speech transitions
        load_dialog_text(REPROMPT, "r.yaml")
    dialog = load_dialog_text(REPROMPT.replace("'result.ok'", "'limit.size() > 0'"), "r.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    outcome = engine.handle_traced(dialog, session, ev.SpeechResult("maybe"), 1.0, seq=1)
    assert outcome.session.state == "first"          # false: on to no_match, reprompt
    assert len(outcome.errors) == 1 and outcome.errors[0].startswith("r.yaml:19: speech condition:")
    (tmp_path / "r.yaml").write_text(REPROMPT.replace("'result.ok'", "'limit.size() > 0'"))
    (tmp_path / "r.test.yaml").write_text("dialog: r.yaml\ncases:\n  - steps:\n      - speech: maybe\n"
                                          "      - expect: {said: once more}\n")
    (case,) = run_test_file(tmp_path / "r.test.yaml").cases
    assert case.passed and case.notes and "r.yaml:19: speech condition:" in case.notes[0]


HOURS = """\
dialog:
  name: h
  initial: a
  time_zone: America/New_York
  states:
    a:
      on_enter: [{say: "It is ${now.weekday} ${now.time}."}]
      transitions:
        - event: speech
          condition: 'within_hours(now, "mon-fri 09:00-17:30, sat 10:00-14:00")'
          target: open
        - event: speech
          target: closed
    open:
      on_enter: [{hangup: open}]
    closed:
      on_enter: [{hangup: closed}]
"""


@pytest.mark.parametrize(("when", "said", "state"), [
    ("2026-12-03T10:00:00-05:00", "It is thursday 10:00.", "open"),
    ("2026-12-03T17:30:00-05:00", "It is thursday 17:30.", "closed"),     # the end is not inside
    ("2026-12-05T13:59:00-05:00", "It is saturday 13:59.", "open"),
    ("2026-12-06T11:00:00-05:00", "It is sunday 11:00.", "closed"),
    ("2026-12-03T15:00:00+00:00", "It is thursday 10:00.", "open"),       # read in the dialog's zone
])
def test_now_and_opening_hours_in_the_dialogs_time_zone(when, said, state) -> None:
    from datetime import datetime
    dialog = load_dialog_text(HOURS, "h.yaml")
    start = datetime.fromisoformat(when).timestamp()
    session, actions = engine.start(dialog, "s1", CALL, start)
    assert [a.data["text"] for a in actions if a.kind == "say"] == [said]
    session, _ = engine.handle(dialog, session, ev.SpeechResult("hello"), start, seq=1)
    assert session.state == state


def test_bad_opening_hours_are_refused_at_load() -> None:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(HOURS.replace("mon-fri 09:00-17:30", "weekdays 9-5"), "h.yaml")
    assert "write them as 'mon-fri 09:00-17:30, sat 10:00-14:00'" in str(info.value.errors[0])


FLOWS = """\
dialog:
  name: f
  initial: greet
  variables: {dob_ok: null, zip_ok: null}
  flows:
    confirm:
      params: [question]
      initial: ask
      states:
        ask:
          collect: {slot: answer, type: yes_no, prompt: "${question}", max_attempts: 2}
          transitions:
            - {event: filled, return: value}
            - {event: failed, return: 'false'}
  states:
    greet:
      on_enter: [{say: "Hello."}]
      run: {flow: confirm, with: {question: '"Is this Alice?"'}, into: dob_ok}
      transitions:
        - {event: returned, condition: value, target: zip}
        - {event: returned, target: bye}
    zip:
      run: {flow: confirm, with: {question: '"Do you live in " + call.callee + "?"'}, into: zip_ok}
      transitions:
        - {event: returned, target: bye}
    bye:
      on_enter: [{say: "Bye."}, {hangup: done}]
"""


def test_a_flow_runs_where_a_state_says_with_its_params_and_returns_a_value_each_time() -> None:
    dialog = load_dialog_text(FLOWS, "f.yaml")
    assert {"greet.ask", "zip.ask"} <= set(dialog.states)     # one copy per use
    session, actions = engine.start(dialog, "s1", ev.CallInfo(callee="Springfield"), 0.0)
    assert [a.data["text"] for a in actions if a.kind == "say"] == ["Hello.", "Is this Alice?"]
    assert session.state == "greet.ask"
    session, actions = engine.handle(dialog, session, ev.SpeechResult("yes it is"), 1.0, seq=1)
    assert session.variables["dob_ok"] is True and session.state == "zip.ask"
    assert [a.data["text"] for a in actions if a.kind == "say"] == ["Do you live in Springfield?"]
    session, _ = engine.handle(dialog, session, ev.SpeechResult("hmm"), 2.0, seq=2)
    session, actions = engine.handle(dialog, session, ev.SpeechResult("what"), 3.0, seq=3)   # failed: false
    assert session.variables["zip_ok"] is False and session.ended
    assert [a.data["text"] for a in actions if a.kind == "say"] == ["Bye."]


@pytest.mark.parametrize(("change", "kind", "words"), [
    (("run: {flow: confirm,", "run: {flow: confirn,"),
     "unknown_flow", "unknown flow 'confirn' (did you mean 'confirm'?)"),
    (("""with: {question: '"Is this Alice?"'}, """, ""), "missing_key", "needs with: question"),
    (("            - {event: filled, return: value}\n            - {event: failed, return: 'false'}\n",
      "            - {event: filled, target: ask}\n"), "missing_key", "flow 'confirm' never returns"),
    (("        - {event: returned, target: bye}\n    bye:",
      "        - {event: timeout, after: 5s, target: bye}\n    bye:"),
     "missing_key", "has no 'returned' transition"),
])
def test_bad_flows_are_refused_at_load(change, kind, words) -> None:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(FLOWS.replace(*change), "f.yaml")
    assert any(e.kind == kind and words in e.message for e in info.value.errors), [str(e) for e in info.value.errors]


def test_a_dialog_with_flows_is_drawn_and_tested(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text(FLOWS)
    (tmp_path / "f.test.yaml").write_text("dialog: f.yaml\ncases:\n  - steps:\n      - speech: 'yes'\n"
                                          "      - speech: 'no'\n      - expect: {hangup: done, variables: "
                                          "{dob_ok: true, zip_ok: false}}\n")
    (case,) = run_test_file(tmp_path / "f.test.yaml").cases
    assert case.passed, case.message
    from dialtone.conversation_runtime.graph import to_dot, to_mermaid
    dialog = load_dialog_text(FLOWS, "f.yaml")
    assert '"greet" -> "greet.ask" [label="run confirm"]' in to_dot(dialog)
    assert "greet__ask --> greet: filled return" in to_mermaid(dialog)


@pytest.mark.parametrize(("condition", "words"), [
    ('confirm_fails + "1" > 2', "'+' does not join them"),
    ("size(confirm_fails) > 0", "size() counts the characters of a string"),
    ('confirm_fails.startsWith("1")', "'.startsWith()' works on strings; 'confirm_fails' is a whole number"),
    ("digits * 2 > 1", "'*' needs numbers"),
])
def test_arithmetic_size_and_string_methods_on_the_wrong_type_are_refused(condition, words) -> None:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(CEL_BASE.replace("size(digits) == 7", condition), "c.yaml")
    assert any(e.kind == "type_mismatch" and words in e.message for e in info.value.errors), \
        [str(e) for e in info.value.errors]

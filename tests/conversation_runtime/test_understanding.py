"""The dialog's understanding constructs (issue 13): intents, collect with validation and
confirmation, say-as filters, the state's expectation; refused at load with file:line:col."""

from __future__ import annotations

import textwrap
from datetime import datetime

import pytest
from dialtone.conversation_runtime.convert import to_message
from dialtone.conversation_runtime.core import engine
from dialtone.conversation_runtime.core import events as ev
from dialtone.conversation_runtime.core.errors import DialogLoadError
from dialtone.conversation_runtime.core.loader import load_dialog_text

CALL = ev.CallInfo(caller="sip:alice@127.0.0.1", callee="1000")
THURSDAY = datetime.fromisoformat("2026-12-03T10:00:00-05:00").timestamp()

DIALOG = """\
dialog:
  name: t
  initial: ask
  time_zone: America/New_York
  intents:
    agent:
      examples: [talk to a person, representative please]
      keywords: [agent, human]
    hours: [when are you open, what are your hours]
  handlers:
    - event: intent
      intent: agent
      target: agent
  states:
    ask:
      collect:
        slot: account
        type: digits
        constraints: {min_length: 4, max_length: 4}
        prompt: "Your four digit account number?"
        reprompts: ["The four digits, please.", "Key in the four digits."]
        validate: 'account != "0000"'
        invalid: "${account | digits} is not an account."
        confirm: "That is ${account | digits}, right?"
      transitions:
        - event: filled
          target: when
        - event: failed
          target: agent
        - event: intent
          intent: hours
          target: hours
    when:
      collect:
        slot: day
        type: date
        prompt: "Which day?"
      transitions:
        - event: filled
          target: bye
    bye:
      on_enter:
        - say: "Account ${account | spell}, ${day | date}."
        - hangup: done
    hours:
      on_enter:
        - say: "Nine to five."
        - hangup: hours
    agent:
      on_enter:
        - transfer: "sip:agent@127.0.0.1"
"""


def dialog():
    return load_dialog_text(DIALOG, "t.yaml")


class Call:
    def __init__(self) -> None:
        self.dialog = dialog()
        self.now = THURSDAY
        self.session, self.actions = engine.start(self.dialog, "s1", CALL, self.now)
        self.seq = 0

    def send(self, event: ev.Event) -> list[ev.Action]:
        self.seq += 1
        self.session, self.actions = engine.handle(self.dialog, self.session, event, self.now, self.seq)
        return self.actions

    def say(self, text: str) -> list[str]:
        return said(self.send(ev.SpeechResult(text, 0.9)))

    def keys(self, digits: str) -> list[str]:
        out: list[str] = []
        for digit in digits:
            out += said(self.send(ev.DtmfPressed(digit)))
        return out


def said(actions: list[ev.Action]) -> list[str]:
    return [a.data["text"] for a in actions if a.kind == "say"]


def test_a_slot_is_asked_confirmed_read_back_and_filled() -> None:
    call = Call()
    assert said(call.actions) == ["Your four digit account number?"]
    assert call.say("it's four double five two") == ["That is four five five two, right?"]
    assert call.session.variables["account"] is None  # not before the caller says yes
    assert call.say("yeah that's right") == ["Which day?"]
    assert call.session.variables["account"] == "4552" and call.session.state == "when"
    assert call.say("next tuesday") == ["Account four, five, five, two, Tuesday, December eighth."]
    assert call.session.variables["day"] == "2026-12-08" and call.session.ended


def test_no_at_the_confirmation_asks_again_and_dtmf_answers_it() -> None:
    call = Call()
    call.say("one two three four")
    assert call.keys("2") == ["Your four digit account number?"]  # DTMF 2 is no
    assert call.keys("5678") == ["That is five six seven eight, right?"]  # four keys end the number
    assert call.keys("1") == ["Which day?"]
    assert call.session.variables["account"] == "5678"


def test_misses_reprompt_in_order_then_fail() -> None:
    call = Call()
    assert call.say("i don't know") == ["The four digits, please."]
    assert call.say("0000") == ["zero zero zero zero is not an account.", "Key in the four digits."]
    assert call.say("banana") == []
    assert call.session.state == "agent"
    assert [a.data["target_uri"] for a in call.actions if a.kind == "transfer"] == ["sip:agent@127.0.0.1"]


def test_intents_from_the_state_and_the_dialog() -> None:
    call = Call()
    call.say("when are you open")
    assert call.session.state == "hours"
    call = Call()
    call.say("can i talk to a real person")
    assert call.session.state == "agent"
    call = Call()  # a value wins over an intent: "one two three four" is the account, not no_match
    assert call.say("one two three four") == ["That is one two three four, right?"]


def test_the_state_sends_what_it_expects() -> None:
    call = Call()
    changed = [a for a in call.actions if a.kind == "state_changed"]
    expect = changed[-1].data["expect"]
    assert (expect["entity"], expect["constraints"]) == ("digits", {"min_length": 4, "max_length": 4})
    # the recognizer's hints: the intents the state listens for (its own, then the handlers')
    assert expect["hints"] == "when are you open, talk to a person, agent, human."
    message = to_message("s1", changed[-1])
    assert message.state_changed.expect.entity == "digits"
    assert message.state_changed.expect.constraints_json == '{"min_length": 4, "max_length": 4}'
    assert message.state_changed.expect.hints == expect["hints"]
    call.say("one two three four")
    changed = [a for a in call.actions if a.kind == "state_changed"]
    assert changed and changed[-1].data["expect"]["entity"] == "yes_no"  # the read-back takes yes or no
    assert "yes" in changed[-1].data["expect"]["hints"]


def test_a_collect_state_survives_a_store_round_trip() -> None:
    """The collect's phase and candidate are session data: a resumed replica carries on."""
    from dialtone.conversation_runtime.core.session import Session
    call = Call()
    call.say("one two three four")
    call.session = Session.from_json(call.session.to_json())
    assert call.say("yes") == ["Which day?"]
    assert call.session.variables["account"] == "1234"


BAD = [
    ("unknown_entity", DIALOG.replace("type: digits", "type: digitz"), 18, 15, "unknown entity type 'digitz'"),
    ("bad_constraint", DIALOG.replace("{min_length: 4, max_length: 4}", "{min_length: 6, max_length: 4}"),
     19, 22, "min_length"),
    ("bad_intent", DIALOG.replace("hours: [when are you open, what are your hours]", "hours: []"), 9, 5,
     "no examples"),
    ("missing_key", DIALOG.replace('        prompt: "Your four digit account number?"\n', ""), 16, 7, "needs 'prompt'"),
    ("unknown_intent", DIALOG.replace("intent: hours", "intent: hourz"), 31, 19, "unknown intent 'hourz'"),
    ("missing_key", DIALOG.replace("        - event: filled\n          target: bye\n", "        - event: failed\n"
                                   "          target: bye\n"), 34, 7, "no 'filled' transition"),
    ("unknown_filter", DIALOG.replace("${account | digits} is", "${account | digitz} is"), 23, 18,
     "unknown say-as filter 'digitz'"),
    ("bad_value", DIALOG.replace("time_zone: America/New_York", "time_zone: Mars/Olympus"), 4, 14, "Mars/Olympus"),
]


@pytest.mark.parametrize(("kind", "text", "line", "col", "words"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_understanding_is_refused_at_load_with_its_place(kind, text, line, col, words) -> None:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(textwrap.dedent(text), "t.yaml")
    matching = [e for e in info.value.errors if e.kind == kind]
    assert matching, [str(e) for e in info.value.errors]
    assert (matching[0].line, matching[0].col) == (line, col), str(matching[0])
    assert words in matching[0].message
    assert str(matching[0]).startswith(f"t.yaml:{line}:{col}: ")


PIZZA = """\
dialog:
  name: pizza
  initial: size
  states:
    size:
      collect:
        slot: size
        type: choice
        constraints: {options: [small, medium, large]}
        prompt: "What size?"
        also:
          - {slot: topping, type: choice, constraints: {options: [pepperoni, mushroom, cheese]}}
          - {slot: method, type: choice, constraints: {options: {pickup: [pick up, collect], delivery: [deliver]}}}
      transitions: [{event: filled, target: topping}]
    topping:
      collect:
        slot: topping
        type: choice
        constraints: {options: [pepperoni, mushroom, cheese]}
        prompt: "Which topping?"
        skip_if_filled: true
      transitions: [{event: filled, target: method}]
    method:
      collect:
        slot: method
        type: choice
        constraints: {options: {pickup: [pick up, collect], delivery: [deliver]}}
        prompt: "Pickup or delivery?"
        skip_if_filled: true
      transitions: [{event: filled, target: done}]
    done:
      on_enter:
        - say: "A ${size} ${topping} for ${method}."
        - hangup: ordered
"""


def test_one_utterance_fills_several_slots_and_the_filled_ones_are_not_asked() -> None:
    dialog = load_dialog_text(PIZZA, "pizza.yaml")
    session, _ = engine.start(dialog, "s1", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.SpeechResult("a large pepperoni for delivery"), 1.0, seq=1)
    assert said(actions) == ["A large pepperoni for delivery."] and session.ended
    session, _ = engine.start(dialog, "s2", CALL, 0.0)
    session, actions = engine.handle(dialog, session, ev.SpeechResult("medium please"), 1.0, seq=1)
    assert said(actions) == ["Which topping?"]              # only what was not said is asked
    session, actions = engine.handle(dialog, session, ev.SpeechResult("mushroom and i'll pick it up"), 2.0, seq=2)
    assert said(actions) == ["Pickup or delivery?"]          # no `also` there: method is asked
    session, actions = engine.handle(dialog, session, ev.SpeechResult("pick up"), 3.0, seq=3)
    assert said(actions) == ["A medium mushroom for pickup."]

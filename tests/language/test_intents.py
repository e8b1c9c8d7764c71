"""The intent matcher against the labelled set in services/language/data/telephony_intents.yaml."""

from pathlib import Path

import dialtone.language
import pytest
import yaml
from dialtone.language.intents import IntentMatcher, validate_intents

DATA = Path(dialtone.language.__file__).parent / "data" / "telephony_intents.yaml"
LABELLED = yaml.safe_load(DATA.read_text())


def test_the_labelled_set_is_big_enough_and_held_out():
    intents, held_out = LABELLED["intents"], LABELLED["held_out"]
    assert len(intents) >= 10 and set(held_out) == set(intents)
    for name, phrases in held_out.items():
        assert len(phrases) >= 10, name
        examples = {e.lower().strip("?.! ") for e in intents[name]["examples"]}
        assert not examples & {p.lower() for p in phrases}, name


def test_accuracy_on_held_out_phrasings_is_at_least_90_percent():
    matcher = IntentMatcher(LABELLED["intents"])
    cases = [(phrase, name) for name, phrases in LABELLED["held_out"].items() for phrase in phrases]
    correct = sum(matcher.match(phrase).intent == name for phrase, name in cases)
    assert correct / len(cases) >= 0.9, f"{correct}/{len(cases)}"


def test_most_out_of_scope_phrases_fall_to_no_match():
    matcher = IntentMatcher(LABELLED["intents"])
    rejected = sum(not matcher.match(phrase).matched for phrase in LABELLED["out_of_scope"])
    assert rejected / len(LABELLED["out_of_scope"]) >= 0.8


def test_a_state_listens_only_for_its_intents():
    matcher = IntentMatcher(LABELLED["intents"])
    assert matcher.match("i need a refill please").intent == "refill"
    result = matcher.match("i need a refill please", among=["agent", "goodbye"])
    assert result.intent != "refill" and set(result.scores) == {"agent", "goodbye"}
    with pytest.raises(ValueError, match="unknown intent 'nope'"):
        matcher.match("hi", among=["nope"])


def test_match_is_deterministic_and_confidence_in_range():
    matcher = IntentMatcher(LABELLED["intents"])
    first = matcher.match("can i speak with a representative")
    assert first == matcher.match("can i speak with a representative")
    assert first.intent == "agent" and 0.45 <= first.confidence <= 1.0
    assert matcher.match("").intent is None


def test_threshold_decides_no_match():
    intents = {"agent": {"examples": ["talk to a person"]}, "hours": ["when are you open"]}
    assert IntentMatcher(intents, threshold=0.99).match("let me talk to someone").intent is None
    assert IntentMatcher(intents, threshold=0.3).match("let me talk to someone").intent == "agent"


@pytest.mark.parametrize(("intents", "message"), [
    ({"agent": {"examples": []}}, "intent 'agent' has no examples"),
    ({"agent": {"keywords": ["agent"]}}, "intent 'agent' has no examples"),
    ({"agent": {"examples": ["  "]}}, "intent 'agent' has an empty example"),
    ({"agent": {"examples": ["hi"], "example": ["x"]}}, "unknown field(s) 'example'"),
    ({"agent": 5}, "expected a mapping"),
    ({}, "no intents are declared"),
])
def test_bad_intent_declarations_are_refused(intents, message):
    assert any(message in problem for problem in validate_intents(intents))
    with pytest.raises(ValueError, match="intent|intents"):
        IntentMatcher(intents)

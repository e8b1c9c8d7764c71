"""Entity types by name: constraint validation at load, extraction at run time."""

from datetime import datetime

import pytest
from dialtone.language.registry import ENTITY_TYPES, extract, to_json, validate_constraints

NOW = datetime(2026, 12, 3, 10, 0)


@pytest.mark.parametrize(("type_name", "constraints"), [
    ("digits", {"min_length": 4}), ("digits", {"min_length": 4, "max_length": 4}), ("yes_no", {}),
    ("yes_no", {"dtmf_yes": "9", "dtmf_no": "6"}), ("number", {"min": 1, "max": 10.5}),
    ("choice", {"options": ["small", "large"]}), ("choice", {"options": {"large": ["big"], "small": None}}),
    ("date", {"prefer": "past"}), ("time", None), ("amount", {"currency": "EUR", "max": 500}),
    ("phone_number", {"region": "GB"}), ("alphanumeric", {"max_length": 10}), ("datetime", {}),
])
def test_valid_constraints(type_name, constraints):
    assert validate_constraints(type_name, constraints) == []


@pytest.mark.parametrize(("type_name", "constraints", "message"), [
    ("colour", {}, "unknown entity type 'colour'; known: yes_no, digits"),
    ("digits", {"min_length": 5, "max_length": 3}, "digits: min_length 5 is above max_length 3: nothing could match"),
    ("digits", {"min_length": 0}, "digits: min_length must be at least 1, got 0"),
    ("digits", {"min_length": "4"}, "digits: min_length must be a whole number, got \"'4'\""),
    ("digits", {"max_length": 1000}, "digits: max_length 1000 is above 64"),
    ("digits", {"length": 4}, "digits: unknown constraint 'length'; allowed: min_length, max_length"),
    ("number", {"min": 10, "max": 1}, "number: min 10 is above max 1"),
    ("choice", {}, "choice: 'options' is required"),
    ("choice", {"options": []}, "choice: options must list at least one option"),
    ("choice", {"options": ["a", "A"]}, "choice: options must not repeat a name"),
    ("choice", {"options": "small,large"}, "choice: options must be a list of names or a mapping"),
    ("choice", {"options": {"large": "big"}}, "synonyms must be a list of non-empty strings"),
    ("date", {"prefer": "soon"}, "date: prefer must be one of future, past"),
    ("time", {"prefer": "past"}, "time: unknown constraint 'prefer'; allowed: none"),
    ("yes_no", {"dtmf_yes": "1", "dtmf_no": "1"}, "yes_no: dtmf_yes and dtmf_no are the same key"),
    ("yes_no", {"dtmf_yes": "yes"}, "yes_no: dtmf_yes must be one DTMF key"),
    ("amount", {"currency": "XYZ"}, "amount: unknown currency 'XYZ'"),
    ("phone_number", {"region": "XX"}, "phone_number: unknown region 'XX'"),
])
def test_impossible_or_unknown_constraints_are_refused(type_name, constraints, message):
    problems = validate_constraints(type_name, constraints)
    assert any(message in problem for problem in problems), problems


def test_extract_by_name():
    assert extract("digits", "oh four double five", constraints={"min_length": 4}) == "0455"
    assert extract("digits", "", dtmf="1234#") == "1234"
    assert extract("number", "", dtmf="5") is None                  # number takes no DTMF
    assert extract("yes_no", "yeah that's right") is True
    assert to_json(extract("datetime", "next tuesday at three pm", now=NOW, tz="America/New_York")) == \
        "2026-12-08T15:00-05:00"
    assert to_json(extract("time", "half past two", now=NOW, tz="America/New_York")) == "14:30"
    assert to_json(extract("amount", "twelve fifty")) == {"value": "12.50", "currency": "USD"}
    with pytest.raises(ValueError, match="date needs the time now"):
        extract("date", "tomorrow")
    with pytest.raises(ValueError, match="unknown entity type"):
        extract("colour", "red")


def test_every_type_has_help_and_takes_what_it_declares():
    for entity in ENTITY_TYPES.values():
        assert entity.help

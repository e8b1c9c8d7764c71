"""Say-as renderers and recognition hints."""

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from dialtone.language import Amount, hints_for, render
from dialtone.language.say_as import SAY_AS_FILTERS


@pytest.mark.parametrize(("value", "name", "expected"), [
    ("8392", "digits", "eight three nine two"),
    (8392, "digits", "eight three nine two"),
    ("0412", "digits", "zero four one two"),
    ("555-1212", "digits", "five five five one two one two"),
    (205, "number", "two hundred and five"),
    ("3.5", "number", "three point five"),
    (-4, "number", "minus four"),
    (3, "ordinal", "third"),
    ("21", "ordinal", "twenty-first"),
    (date(2026, 12, 8), "date", "Tuesday, December eighth"),
    ("2026-12-08", "date", "Tuesday, December eighth"),
    (datetime(2026, 12, 8, 15, 0), "date", "Tuesday, December eighth"),
    (time(15, 0), "time", "three p.m."),
    ("15:30", "time", "three thirty p.m."),
    (time(9, 5), "time", "nine oh five a.m."),
    (time(12, 0), "time", "noon"),
    (time(0, 0), "time", "midnight"),
    (time(0, 30), "time", "twelve thirty a.m."),
    ("2026-12-08T15:00-05:00", "time", "three p.m."),
    (Amount(Decimal("12.50"), "USD"), "amount", "twelve dollars and fifty cents"),
    ({"value": "1", "currency": "EUR"}, "amount", "one euro"),
    ("0.50", "amount", "fifty cents"),
    ("100", "amount", "one hundred dollars"),
    ("1.01", "amount", "one dollar and one cent"),
    ("AB12", "spell", "A, B, one, two"),
    ("rx-4", "spell", "R, X, four"),
    ("+16502530000", "phone", "six five zero, two five three, zero zero zero zero"),
])
def test_render(value, name, expected):
    assert render(value, name) == expected


def test_render_options():
    assert render("2027-01-05", "date", today=date(2026, 12, 3)) == "Tuesday, January fifth, twenty twenty-seven"
    assert render("2026-12-05", "date", today=date(2026, 12, 3)) == "Saturday, December fifth"
    assert render("20", "amount", currency="GBP") == "twenty pounds sterling"
    assert render("020 7946 0018", "phone", region="GB") == "zero two zero, seven nine four six, zero zero one eight"


@pytest.mark.parametrize(("value", "name", "message"), [
    ("abc", "digits", "'digits' needs 1 to 64 digits, got 'abc'"),
    ("1" * 65, "digits", "'digits' needs 1 to 64 digits"),
    ("9" * 1000, "number", "'number' reads numbers below 10^15, got '9999"),
    ("NaN", "number", "'number' reads numbers below 10^15"),
    ("-Infinity", "amount", "'amount' reads numbers below 10^15"),
    ("1e9999", "amount", "'amount' reads numbers below 10^15"),
    ("x" * 65, "spell", "'spell' needs 1 to 64 letters or digits"),
    ("x" * 500, "number", "'number' needs a number, got 'xxxx"),
    ("2.5", "ordinal", "'ordinal' needs a whole number"),
    ("next week", "date", "'date' needs a date like 2026-12-08"),
    ("teatime", "time", "'time' needs a time like 15:30"),
    ("--", "spell", "'spell' needs 1 to 64 letters or digits"),
    ("call me", "phone", "'phone' needs a phone number"),
    ("1", "shout", "unknown say-as filter 'shout'; known: digits"),
])
def test_render_refuses_what_it_cannot_read(value, name, message):
    with pytest.raises(ValueError) as raised:
        render(value, name)
    assert message in str(raised.value) and len(str(raised.value)) < 200


def test_every_filter_is_documented():
    assert set(SAY_AS_FILTERS) == {"digits", "number", "ordinal", "date", "time", "amount", "spell", "phone"}


def test_hints_from_entities_intents_and_options():
    hints = hints_for(
        entities=["yes_no", "digits"],
        intents={"agent": {"examples": ["Talk to a person?", "operator"], "keywords": ["agent"]},
                 "hours": ["when are you open"]},
        options={"large": ["big"], "small": []})
    assert hints.phrases == ("large", "big", "small", "Talk to a person", "when are you open", "agent", "yes", "no",
                             "that's right")
    assert hints.prompt == "large, big, small, Talk to a person, when are you open, agent, yes, no, that's right."


def test_hints_are_bounded_and_digits_add_nothing():
    many = {f"intent{i}": [f"phrase number {i}"] for i in range(100)}
    hints = hints_for(intents=many, max_phrases=10, max_prompt_chars=60)
    assert len(hints.phrases) == 10 and len(hints.prompt) <= 60
    assert hints_for(entities=["digits", "number", "phone_number"]).phrases == ()
    assert hints_for().prompt == ""

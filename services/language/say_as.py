"""Say-as: values rendered as the words a TTS should speak.

    render("8392", "digits")                  -> "eight three nine two"
    render(205, "number")                     -> "two hundred and five"
    render(date(2026, 12, 8), "date")         -> "Tuesday, December eighth"
    render(time(15, 30), "time")              -> "three thirty p.m."
    render(Amount(Decimal("12.50"), "USD"), "amount") -> "twelve dollars and fifty cents"
    render("AB12", "spell")                   -> "A, B, one, two"
    render("+16502530000", "phone")           -> "six five zero, two five three, zero zero zero zero"

A prompt template's ``${rx | digits}`` calls ``render(rx, "digits")``. Values arrive as the
extractors return them or as their JSON form (a slot stored in a session is JSON): "2026-12-08",
"15:30", {"value": "12.50", "currency": "USD"}. A value a filter cannot read raises ValueError with
a short message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from dialtone.common.quoting import quote_prefix
from dialtone.language.entities import Amount
from num2words import CONVERTER_CLASSES, num2words

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_CURRENCY_FORMS = CONVERTER_CLASSES["en"].CURRENCY_FORMS
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NOT_DIGITS = re.compile(r"\D+")
# Past these a prompt would read for minutes: a template bug, not something to speak.
MAX_SPOKEN_NUMBER = Decimal(10) ** 15
MAX_SPOKEN_CHARACTERS = 64


def say_digits(value: Any) -> str:
    """Each digit as a word: "0412" -> "zero four one two". Other characters are dropped."""
    text = str(value)
    digits = _NOT_DIGITS.sub("", text)
    if not digits or len(digits) > MAX_SPOKEN_CHARACTERS:
        raise ValueError(f"'digits' needs 1 to {MAX_SPOKEN_CHARACTERS} digits, got {quote_prefix(text)}")
    return " ".join(_DIGIT_WORDS[int(d)] for d in digits)


def say_number(value: Any) -> str:
    """A cardinal: 205 -> "two hundred and five", "3.5" -> "three point five"."""
    return num2words(_decimal(value, "number"))


def say_ordinal(value: Any) -> str:
    number = _decimal(value, "ordinal")
    if number != number.to_integral_value() or number < 1:
        raise ValueError(f"'ordinal' needs a whole number from 1, got {quote_prefix(str(value))}")
    return num2words(int(number), to="ordinal")


def say_date(value: Any, *, today: date | None = None) -> str:
    """ "Tuesday, December eighth"; the year is said when it is not ``today``'s."""
    day = _date(value)
    words = f"{_WEEKDAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {num2words(day.day, to='ordinal')}"
    if today is not None and today.year != day.year:
        words += f", {num2words(day.year, to='year')}"
    return words


def say_time(value: Any) -> str:
    """ "three p.m.", "three thirty p.m.", "nine oh five a.m.", "noon", "midnight"."""
    clock = _time(value)
    if clock.minute == 0 and clock.hour in (0, 12):
        return "midnight" if clock.hour == 0 else "noon"
    hour = clock.hour % 12 or 12
    minutes = "" if clock.minute == 0 else (
        f" oh {num2words(clock.minute)}" if clock.minute < 10 else f" {num2words(clock.minute)}")
    return f"{num2words(hour)}{minutes} {'a.m.' if clock.hour < 12 else 'p.m.'}"


def say_amount(value: Any, currency: str = "USD") -> str:
    """ "twelve dollars and fifty cents", "one euro", "fifty cents"."""
    amount = _amount(value, currency)
    forms = _CURRENCY_FORMS.get(amount.currency)
    if forms is None:
        return f"{num2words(amount.value)} {amount.currency}"
    (unit, units), (cent, cents) = forms
    whole = int(amount.value)
    fraction = int((amount.value - whole) * 100)
    parts = []
    if whole or not fraction:
        parts.append(f"{num2words(whole)} {unit if whole == 1 else units}")
    if fraction:
        parts.append(f"{num2words(fraction)} {cent if fraction == 1 else cents}")
    return " and ".join(parts)


def say_spell(value: Any) -> str:
    """Each character on its own: "AB12" -> "A, B, one, two" (spaces and punctuation dropped)."""
    characters = [c for c in str(value) if c.isalnum()]
    if not characters or len(characters) > MAX_SPOKEN_CHARACTERS:
        raise ValueError(f"'spell' needs 1 to {MAX_SPOKEN_CHARACTERS} letters or digits, "
                         f"got {quote_prefix(str(value))}")
    return ", ".join(_DIGIT_WORDS[int(c)] if c.isdigit() else c.upper() for c in characters)


def say_phone(value: Any, region: str = "US") -> str:
    """A phone number in its national groups, each digit a word, a pause between groups."""
    text = str(value)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"'phone' needs a phone number, got {quote_prefix(text)}") from error
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    groups = [g for g in re.split(r"[^\d]+", national) if g]
    return ", ".join(say_digits(g) for g in groups)


SAY_AS_FILTERS: Mapping[str, Callable[..., str]] = {
    "digits": say_digits, "number": say_number, "ordinal": say_ordinal, "date": say_date, "time": say_time,
    "amount": say_amount, "spell": say_spell, "phone": say_phone,
}


def render(value: Any, filter_name: str, **options: Any) -> str:
    """``value`` through the say-as filter ``filter_name`` (options: ``today`` for date,
    ``currency`` for amount, ``region`` for phone)."""
    renderer = SAY_AS_FILTERS.get(filter_name)
    if renderer is None:
        raise ValueError(f"unknown say-as filter {quote_prefix(filter_name)}; known: {', '.join(SAY_AS_FILTERS)}")
    accepted = {"date": ("today",), "amount": ("currency",), "phone": ("region",)}.get(filter_name, ())
    return renderer(value, **{k: v for k, v in options.items() if k in accepted and v is not None})


# --- reading values back from their JSON form -----------------------------------------------------

def _decimal(value: Any, filter_name: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{filter_name!r} needs a number, got {value}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{filter_name!r} needs a number, got {quote_prefix(str(value))}") from None
    if not number.is_finite() or abs(number) >= MAX_SPOKEN_NUMBER:
        raise ValueError(f"{filter_name!r} reads numbers below 10^15, got {quote_prefix(str(value))}")
    return number


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"'date' needs a date like 2026-12-08, got {quote_prefix(str(value))}") from None


def _time(value: Any) -> time:
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, time):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text).time() if "T" in text else time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'time' needs a time like 15:30, got {quote_prefix(text)}") from None


def _amount(value: Any, currency: str) -> Amount:
    if isinstance(value, Amount):
        return value
    if isinstance(value, Mapping):
        return Amount(_decimal(value.get("value"), "amount"), str(value.get("currency") or currency).upper())
    return Amount(_decimal(value, "amount"), currency.upper())

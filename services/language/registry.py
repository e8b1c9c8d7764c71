"""Entity types by name, with the constraints each accepts.

A dialog says ``collect: {type: digits, min_length: 4}``; at load the runtime calls
``validate_constraints("digits", {"min_length": 4})`` and refuses the dialog on any problem; at
run time it calls ``extract("digits", text, dtmf=..., constraints=..., now=..., tz=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from dialtone.common.quoting import quote_prefix
from dialtone.language import entities, when
from dialtone.language.entities import Amount
from num2words import CONVERTER_CLASSES

# Currencies that say-as can read out.
_CURRENCY_FORMS_KNOWN = frozenset(CONVERTER_CLASSES["en"].CURRENCY_FORMS)


@dataclass(frozen=True)
class Constraint:
    kind: str                   # "int", "number", "str", "options", "choice"
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False
    minimum: float | None = None


@dataclass(frozen=True)
class EntityType:
    name: str
    extract: Callable[..., Any]
    constraints: Mapping[str, Constraint]
    takes_dtmf: bool = False
    takes_clock: bool = False   # needs now and tz
    help: str = ""


_LENGTHS = {
    "min_length": Constraint("int", "fewest characters accepted", minimum=1),
    "max_length": Constraint("int", "most characters accepted", minimum=1),
}
_RANGE = {"min": Constraint("number", "smallest value accepted"), "max": Constraint("number", "largest value accepted")}
_PREFER = {"prefer": Constraint("choice", "which way an incomplete date resolves", choices=("future", "past"))}

ENTITY_TYPES: Mapping[str, EntityType] = {t.name: t for t in (
    EntityType("yes_no", entities.extract_yes_no, {
        "dtmf_yes": Constraint("str", "the key for yes (default 1)"),
        "dtmf_no": Constraint("str", "the key for no (default 2)"),
    }, takes_dtmf=True, help="yes or no: 'yeah that's right', 'nope'; DTMF 1/2"),
    EntityType("digits", entities.extract_digits, dict(_LENGTHS), takes_dtmf=True,
               help="a digit string, leading zeros kept: 'oh four double five'"),
    EntityType("number", entities.extract_number, dict(_RANGE), help="a cardinal: 'two hundred and five'"),
    EntityType("ordinal", entities.extract_ordinal, {"max": Constraint("int", "largest ordinal", minimum=1)},
               help="an ordinal: 'the third'"),
    EntityType("choice", entities.extract_choice, {
        "options": Constraint("options", "the options: a list of names, or name -> list of synonyms",
                              required=True),
        "threshold": Constraint("number", "fuzzy match score needed, 0-100 (default 85)", minimum=0),
    }, takes_dtmf=True, help="one of the listed options: 'the large one', 'the second one'"),
    EntityType("date", when.extract_date, dict(_PREFER), takes_clock=True,
               help="a calendar date: 'next tuesday', 'december fifth', 'the third'"),
    EntityType("time", when.extract_time, {}, takes_clock=True,
               help="a time of day: 'half past two', '3 pm', 'tomorrow morning'"),
    EntityType("datetime", when.extract_datetime, dict(_PREFER), takes_clock=True,
               help="a date and a time: 'next tuesday at three pm'"),
    EntityType("amount", entities.extract_amount, {
        "currency": Constraint("str", "ISO 4217 code of an amount said without one (default USD)"),
        **_RANGE,
    }, help="money: 'twelve dollars and fifty cents', '$12.50'"),
    EntityType("phone_number", entities.extract_phone_number, {
        "region": Constraint("str", "ISO 3166 region for national numbers (default US)"),
    }, takes_dtmf=True, help="a valid phone number, as E.164"),
    EntityType("alphanumeric", entities.extract_alphanumeric, dict(_LENGTHS),
               help="spelled letters and digits: 'b as in boy seven alpha'"),
)}


def validate_constraints(type_name: str, constraints: Mapping[str, Any] | None) -> list[str]:
    """Problems with ``constraints`` for entity type ``type_name``, one short sentence each."""
    entity = ENTITY_TYPES.get(type_name)
    if entity is None:
        return [f"unknown entity type {quote_prefix(str(type_name))}; known: {', '.join(ENTITY_TYPES)}"]
    constraints = dict(constraints or {})
    problems = []
    for name in constraints:
        if name not in entity.constraints:
            allowed = ", ".join(entity.constraints) or "none"
            problems.append(f"{type_name}: unknown constraint {quote_prefix(str(name))}; allowed: {allowed}")
    for name, spec in entity.constraints.items():
        if name not in constraints:
            if spec.required:
                problems.append(f"{type_name}: {name!r} is required ({spec.help})")
            continue
        problem = _check_value(spec, constraints[name])
        if problem:
            problems.append(f"{type_name}: {name} {problem}")
    if not problems:
        problems.extend(_check_together(type_name, constraints))
    return problems


def _check_value(spec: Constraint, value: Any) -> str | None:
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, got {quote_prefix(repr(value))}"
    elif spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return f"must be a number, got {quote_prefix(repr(value))}"
    elif spec.kind == "str":
        if not isinstance(value, str) or not value:
            return f"must be a non-empty string, got {quote_prefix(repr(value))}"
    elif spec.kind == "choice":
        if value not in spec.choices:
            return f"must be one of {', '.join(spec.choices)}, got {quote_prefix(repr(value))}"
    elif spec.kind == "options":
        return _check_options(value)
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {spec.minimum:g}, got {value}"
    return None


def _check_options(value: Any) -> str | None:
    if isinstance(value, Mapping):
        names = list(value)
        for name, synonyms in value.items():
            if synonyms is not None and (not isinstance(synonyms, list | tuple)
                                         or not all(isinstance(s, str) and s.strip() for s in synonyms)):
                return f"of {quote_prefix(str(name))}: synonyms must be a list of non-empty strings"
    elif isinstance(value, list | tuple):
        names = list(value)
    else:
        return f"must be a list of names or a mapping of name to synonyms, got {type(value).__name__}"
    if not names:
        return "must list at least one option"
    if not all(isinstance(n, str) and n.strip() for n in names):
        return "must be non-empty strings"
    if len({n.strip().lower() for n in names}) != len(names):
        return "must not repeat a name"
    return None


def _check_together(type_name: str, constraints: Mapping[str, Any]) -> list[str]:
    """Constraints that are each fine but cannot all hold."""
    problems = []
    for low, high in (("min_length", "max_length"), ("min", "max")):
        if low in constraints and high in constraints and constraints[low] > constraints[high]:
            problems.append(f"{type_name}: {low} {constraints[low]} is above {high} {constraints[high]}: "
                            "nothing could match")
    if type_name in ("digits", "alphanumeric") and constraints.get("max_length", 0) > 64:
        problems.append(f"{type_name}: max_length {constraints['max_length']} is above 64")
    if type_name == "yes_no" and constraints.get("dtmf_yes", "1") == constraints.get("dtmf_no", "2"):
        problems.append("yes_no: dtmf_yes and dtmf_no are the same key")
    for key in ("dtmf_yes", "dtmf_no"):
        if key in constraints and (len(constraints[key]) != 1 or constraints[key] not in "0123456789*#"):
            problems.append(f"yes_no: {key} must be one DTMF key (0-9, *, #), got {quote_prefix(constraints[key])}")
    if type_name == "amount" and "currency" in constraints and constraints["currency"].upper() not in \
            _CURRENCY_FORMS_KNOWN:
        problems.append(f"amount: unknown currency {quote_prefix(constraints['currency'])}; "
                        f"known: {', '.join(sorted(_CURRENCY_FORMS_KNOWN))}")
    if type_name == "phone_number" and "region" in constraints and \
            constraints["region"].upper() not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(f"phone_number: unknown region {quote_prefix(constraints['region'])}")
    return problems


def validate_time_zone(name: str) -> str | None:
    """A problem with the time zone name, or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {quote_prefix(name)} (expected an IANA name such as America/New_York)"
    return None


def extract(type_name: str, text: str, *, dtmf: str = "", constraints: Mapping[str, Any] | None = None,
            now: datetime | None = None, tz: str = "UTC") -> Any:
    """The value of entity ``type_name`` in ``text`` (or in ``dtmf``), or None. Constraints are
    assumed valid (``validate_constraints`` at load)."""
    entity = ENTITY_TYPES.get(type_name)
    if entity is None:
        raise ValueError(f"unknown entity type {quote_prefix(str(type_name))}; known: {', '.join(ENTITY_TYPES)}")
    arguments = dict(constraints or {})
    if entity.takes_clock:
        if now is None:
            raise ValueError(f"{type_name} needs the time now (and a time zone)")
        arguments.update(now=now, tz=tz)
    if entity.takes_dtmf and dtmf:
        arguments["dtmf"] = dtmf
    elif dtmf:
        return None
    return entity.extract(text, **arguments)


def warm_up(regions: tuple[str, ...] = ("US",)) -> None:
    """Load what the libraries load on first use (dateparser's language data ~100 ms, a region's
    phone metadata ~3 ms), so that no caller's turn pays for it. Call once at service start."""
    when.warm_up()
    for region in regions:
        phonenumbers.parse("2015550123", region)


def to_json(value: Any) -> Any:
    """An extracted value as JSON data: dates and times in ISO 8601, amounts as {value, currency}."""
    if isinstance(value, Amount):
        return value.to_json()
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    return value

"""Dates and times said on the telephone, relative to a clock and a time zone.

    extract_date("next tuesday at three pm", now=..., tz="America/New_York") -> date(2026, 12, 8)
    extract_time("next tuesday at three pm", ...)                           -> time(15, 0)
    extract_datetime("next tuesday at three pm", ...)                       -> 2026-12-08T15:00-05:00

Why a grammar of our own rather than dateparser alone: dateparser misses common telephone
phrasings ("the third", "december fifth", "half past two", "nine oh five"), its first parse costs
~100 ms and a parse ~0.3-7 ms, against a 5 ms p99 budget for the whole turn's extraction. The
grammar below covers what callers say (measured by ``python -m bench.understanding``: tens of
microseconds); dateparser is only the fallback for written forms the grammar does not know
("5.12.2026", "3 days ago"), and only when the utterance has a cue that it is a date at all, so a
no-match ("I don't know") never pays for it.

Resolution rules (documented in docs/understanding.md):
- "tuesday", "this tuesday": the first Tuesday from today on; "next tuesday": the first after today;
  "last tuesday": the most recent before today. A day or month-day without a year is the next such
  date from today on (``prefer="past"``: the most recent up to today, for a date of birth).
- A time without am/pm: 1-6 is pm, 7-11 am, 12 noon, 0 and 13-23 as said; "morning", "afternoon",
  "evening", "tonight" decide when said. A part of the day alone: morning 09:00, afternoon 15:00,
  evening 18:00, tonight/night 20:00, noon 12:00, midnight 00:00.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from dialtone.language.text import normalize

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_WORDS = {**{w: i for i, w in enumerate(_WEEKDAYS)}, "tues": 1, "weds": 2, "thurs": 3}
_MONTH_WORDS = {
    **{calendar.month_name[i].lower(): i for i in range(1, 13)},
    **{calendar.month_abbr[i].lower(): i for i in range(1, 13)}, "sept": 9,
}
_WEEKDAY = "(" + "|".join(sorted(_WEEKDAY_WORDS, key=len, reverse=True)) + ")"
_MONTH = "(" + "|".join(sorted(_MONTH_WORDS, key=len, reverse=True)) + ")"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,? (?:of )?(\d{4}|(?:19|20) \d{2}))?"
_UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "fortnight": 14}


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\S)(?:" + pattern + r")(?!\S)")


_RELATIVE_DAY = _rx(r"(?:the )?(day after tomorrow|day before yesterday)|(today|tonight|tomorrow|tmrw|yesterday)")
_IN_DAYS = _rx(r"in (\d+|a|an|a couple of|a few) (days?|weeks?|fortnight)"
               r"|(\d+|a|an|a couple of) (days?|weeks?|fortnight) (from (?:now|today)|ago|later|after today)")
_WEEKDAY_PHRASE = _rx(r"(?:(next|this|coming|this coming|last|previous|past) )?" + _WEEKDAY
                      + r"(?: (after next|next week|this week|last week))?"
                      + r"(?: (?:the )?" + _DAY + r")?")
_MONTH_DAY = _rx(r"(?:the )?" + _MONTH + r" (?:the )?" + _DAY + _YEAR)
_DAY_OF_MONTH = _rx(r"(?:the )?" + _DAY + r" (?:of )?" + _MONTH + _YEAR)
_NUMERIC_DATE = _rx(r"(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?|(\d{4}) (\d{1,2}) (\d{1,2})")
_ORDINAL_DAY = _rx(r"(?:the )?(\d{1,2})(?:st|nd|rd|th)(?: of (?:the |this |next )?month)?")
# dateparser's cost grows with the text (~2 ms at 100 words): a written date is a few words.
FALLBACK_MAX_WORDS = 8
_DATE_CUE = re.compile(r"\d|\b(?:days?|weeks?|months?|years?|fortnight|ago|from now|weekend)\b")

_DAYPART = _rx(r"(?:in the |this |tomorrow |at |around )?(morning|afternoon|evening|night|tonight|noon|midday|midnight"
               r"|lunchtime|lunch time)")
_DAYPART_TIME = {"morning": (9, 0), "afternoon": (15, 0), "evening": (18, 0), "night": (20, 0), "tonight": (20, 0),
                 "noon": (12, 0), "midday": (12, 0), "midnight": (0, 0), "lunchtime": (12, 0), "lunch time": (12, 0)}
_DAYPART_MERIDIEM = {"morning": "am", "afternoon": "pm", "evening": "pm", "night": "pm", "tonight": "pm"}
_OH_MINUTES = re.compile(r"(?<!\S)(\d{1,2}) (?:oh|o) (\d)(?!\S)")
_MERIDIEM = r"(?: (am|pm))?"
_CLOCK = _rx(r"(\d{1,2}):(\d{2})" + _MERIDIEM
             + r"|(\d{1,2})(\d{2})" + r" (am|pm|hours)"
             + r"|(\d{1,2}) (\d{2})" + _MERIDIEM + r"(?! (?:am|pm)\b)"
             + r"|(\d{1,2})(?: o'clock)?" + r" (am|pm)"
             + r"|(\d{1,2}) o'clock")
_PAST_TO = _rx(r"(half|(?:a )?quarter|\d{1,2})(?: minutes?)? (past|after|to|till|til|before|of) (\d{1,2})"
               r"(?: o'clock)?" + _MERIDIEM)
_BARE_HOUR = _rx(r"(?:at|around|about|by|after|before|say) (\d{1,2})(?! (?:days?|weeks?|minutes?|hours?))")
_HOUR_THEN_DAYPART = _rx(r"(\d{1,2})(?= (?:in the |at |this |tomorrow )?(?:morning|afternoon|evening|night|tonight))")
_ONLY_HOUR = re.compile(r"(?:(?:um|uh|er|at|around|about|maybe) )*(\d{1,2})(?: please)?")
_IN_TIME = _rx(r"in (\d+|a|an|half an|a half|a couple of) (minutes?|mins?|hours?)(?: and a half)?"
               r"|(\d+|a|an) (minutes?|hours?) from now")
_NOW = _rx(r"right now|now|right away|immediately|as soon as possible|asap")
_COUNT_WORDS = {"a": 1, "an": 1, "a couple of": 2, "a few": 3, "half an": 0.5, "a half": 0.5}


@dataclass(frozen=True)
class When:
    date: date | None
    time: time | None


def local_now(now: datetime, tz: str | tzinfo) -> datetime:
    """``now`` in ``tz``; a naive ``now`` is taken as already local."""
    zone = _zone(tz) if isinstance(tz, str) else tz
    return now.astimezone(zone) if now.tzinfo else now.replace(tzinfo=zone)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_when(text: str, *, now: datetime, tz: str | tzinfo, prefer: str = "future") -> When:
    """The date and the time in ``text``, each None when not said."""
    here = local_now(now, tz)
    normalized = normalize(text)
    found_date, rest, said = _find_date(normalized, here.date(), prefer)
    found_time, shift = _find_time(rest, normalized, here)
    if shift is not None:                       # "in two hours": the date follows the clock
        return When(found_date or shift.date(), found_time)
    if not said and normalized.count(" ") < FALLBACK_MAX_WORDS and _DATE_CUE.search(normalized) \
            and not _has_time_words(normalized):
        found_date = _fallback_date(text, here, prefer)
    if found_date is None and found_time is not None and _DAYPART_ONLY_TODAY.search(normalized):
        found_date = here.date()
    return When(found_date, found_time)


_DAYPART_ONLY_TODAY = _rx(r"this (?:morning|afternoon|evening)")


def extract_date(text: str, *, now: datetime, tz: str | tzinfo, prefer: str = "future") -> date | None:
    return parse_when(text, now=now, tz=tz, prefer=prefer).date


def extract_time(text: str, *, now: datetime, tz: str | tzinfo) -> time | None:
    return parse_when(text, now=now, tz=tz).time


def extract_datetime(text: str, *, now: datetime, tz: str | tzinfo, prefer: str = "future") -> datetime | None:
    """A local date and time, time zone aware. A time alone is today's when still ahead (or when
    ``prefer="past"`` and already gone), else the next (previous) day's. A date alone is None."""
    here = local_now(now, tz)
    found = parse_when(text, now=now, tz=tz, prefer=prefer)
    if found.time is None:
        return None
    day = found.date
    if day is None:
        day = here.date()
        at = datetime.combine(day, found.time, here.tzinfo)
        if prefer == "future" and at < here.replace(second=0, microsecond=0):
            day += timedelta(days=1)
        elif prefer == "past" and at > here:
            day -= timedelta(days=1)
    return datetime.combine(day, found.time, here.tzinfo)


# --- dates ----------------------------------------------------------------------------------------

def _find_date(text: str, today: date, prefer: str) -> tuple[date | None, str, bool]:
    """The first date phrase in ``text`` (by the order of the rules) and ``text`` without it. A
    phrase that names no real day ("february thirtieth") is no date, not a cue to look further."""
    for pattern, resolve in _DATE_RULES:
        found = pattern.search(text)
        if found:
            return resolve(found, today, prefer), (text[:found.start()] + " " + text[found.end():]).strip(), True
    return None, text, False


def _relative_day(found: re.Match[str], today: date, prefer: str) -> date | None:
    word = found.group(1) or found.group(2)
    offset = {"day after tomorrow": 2, "day before yesterday": -2, "today": 0, "tonight": 0, "tomorrow": 1,
              "tmrw": 1, "yesterday": -1}[word]
    return today + timedelta(days=offset)


def _count(word: str) -> float:
    return float(word) if word.isdigit() else _COUNT_WORDS[word]


def _in_days(found: re.Match[str], today: date, prefer: str) -> date | None:
    if found.group(1):
        count, unit, sign = found.group(1), found.group(2), 1
    else:
        count, unit, sign = found.group(3), found.group(4), -1 if found.group(5) == "ago" else 1
    return today + timedelta(days=sign * int(_count(count) * _UNIT_DAYS[unit]))


def _weekday(found: re.Match[str], today: date, prefer: str) -> date | None:
    modifier, name, week_word, day = found.group(1), found.group(2), found.group(3), found.group(4)
    target = _WEEKDAY_WORDS[name]
    if day:                                     # "tuesday the 8th": the 8th that is a Tuesday
        for months_ahead in range(13):
            candidate = _day_of_month(int(day), today, prefer, months_ahead)
            if candidate and candidate.weekday() == target:
                return candidate
        return None
    ahead = (target - today.weekday()) % 7
    if modifier in ("last", "previous", "past") or week_word == "last week" or (
            prefer == "past" and not modifier and not week_word):
        behind = (today.weekday() - target) % 7
        if modifier or week_word:
            behind = behind or 7
        return today - timedelta(days=behind)
    if modifier == "next" or week_word == "after next":
        ahead = ahead or 7
    if week_word in ("next week", "after next"):        # in the calendar week after this one
        monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
        result = monday + timedelta(days=target)
        return result + timedelta(days=7) if week_word == "after next" else result
    return today + timedelta(days=ahead)


def _year(word: str | None) -> int | None:
    if not word:
        return None
    if " " in word:                             # "twenty twenty six" -> "20 26"
        century, rest = word.split(" ")
        return int(century) * 100 + int(rest)
    return int(word) if len(word) == 4 else 2000 + int(word)


def _calendar_date(year: int | None, month: int, day: int, today: date, prefer: str) -> date | None:
    if year is not None:
        try:
            return date(year, month, day)
        except ValueError:
            return None
    step = 1 if prefer == "future" else -1
    for offset in (0, step, 2 * step, 3 * step, 4 * step):    # Feb 29 can be four years off
        try:
            candidate = date(today.year + offset, month, day)
        except ValueError:
            continue
        if (candidate >= today) if prefer == "future" else (candidate <= today):
            return candidate
    return None


def _month_day(found: re.Match[str], today: date, prefer: str) -> date | None:
    month, day, year = found.group(1), found.group(2), found.group(3)
    return _calendar_date(_year(year), _MONTH_WORDS[month], int(day), today, prefer)


def _day_month(found: re.Match[str], today: date, prefer: str) -> date | None:
    day, month, year = found.group(1), found.group(2), found.group(3)
    return _calendar_date(_year(year), _MONTH_WORDS[month], int(day), today, prefer)


def _numeric(found: re.Match[str], today: date, prefer: str) -> date | None:
    if found.group(4):                          # 2026-12-05 (hyphens became spaces)
        return _calendar_date(int(found.group(4)), int(found.group(5)), int(found.group(6)), today, prefer)
    month, day, year = int(found.group(1)), int(found.group(2)), found.group(3)
    if not 1 <= month <= 12:
        return None
    return _calendar_date(_year(year), month, day, today, prefer)


def _day_of_month(day: int, today: date, prefer: str, months_away: int = 0) -> date | None:
    """Day ``day`` of the first month (from this one, ``months_away`` further on) that has it and
    is not behind (``prefer="past"``: ahead of) today."""
    step = 1 if prefer == "future" else -1
    index = today.year * 12 + today.month - 1
    skipped = 0
    for offset in range(0, 24 * step, step):
        year, month = divmod(index + offset, 12)
        try:
            candidate = date(year, month + 1, day)
        except ValueError:
            continue
        if (candidate >= today) if prefer == "future" else (candidate <= today):
            if skipped == months_away:
                return candidate
            skipped += 1
    return None


def _ordinal_day(found: re.Match[str], today: date, prefer: str) -> date | None:
    day = int(found.group(1))
    return _day_of_month(day, today, prefer) if 1 <= day <= 31 else None


_DATE_RULES = (
    (_MONTH_DAY, _month_day),
    (_DAY_OF_MONTH, _day_month),
    (_NUMERIC_DATE, _numeric),
    (_WEEKDAY_PHRASE, _weekday),
    (_IN_DAYS, _in_days),
    (_RELATIVE_DAY, _relative_day),
    (_ORDINAL_DAY, _ordinal_day),
)


def _fallback_date(text: str, here: datetime, prefer: str) -> date | None:
    settings = {"RELATIVE_BASE": here.replace(tzinfo=None), "PREFER_DATES_FROM": prefer,
                "REQUIRE_PARTS": ["day"], "STRICT_PARSING": False}
    # imported here: it is only the fallback, loaded by warm_up() in a service, and it brings logging
    # handlers (sockets) that a pure library's importers (the runtime's sans-I/O core) should not get
    import dateparser

    parsed = dateparser.parse(text, languages=["en"], settings=settings)
    return parsed.date() if parsed else None


def warm_up() -> None:
    """dateparser loads its language data on first use (~100 ms): do it at start, not in a call."""
    _fallback_date("3 days ago", datetime(2026, 1, 1), "future")


# --- times ----------------------------------------------------------------------------------------

def _has_time_words(text: str) -> bool:
    return bool(_CLOCK.search(text) or _PAST_TO.search(text) or _IN_TIME.search(text))


def _find_time(text: str, whole: str, here: datetime) -> tuple[time | None, datetime | None]:
    """The time said in ``text`` (the utterance less its date) and, for a relative one ("in 2
    hours"), the moment it names. A part of the day ("tonight") counts wherever it is in ``whole``."""
    text = _OH_MINUTES.sub(r"\1 0\2", text)
    relative = _IN_TIME.search(text)
    if relative:
        if relative.group(1):
            count, unit = _count(relative.group(1)), relative.group(2)
            if relative.group(0).endswith("and a half"):
                count += 0.5
        else:
            count, unit = _count(relative.group(3)), relative.group(4)
        moment = here + timedelta(minutes=count * (60 if unit.startswith("h") else 1))
        moment = moment.replace(second=0, microsecond=0)
        return moment.time(), moment
    if _NOW.search(text):
        return here.time().replace(second=0, microsecond=0), None
    daypart_match = _DAYPART.search(whole)
    daypart = daypart_match.group(1) if daypart_match else None
    meridiem_hint = _DAYPART_MERIDIEM.get(daypart or "")
    found = _PAST_TO.search(text)
    if found:
        amount, relation, hour = found.group(1), found.group(2), int(found.group(3))
        minutes = 30 if amount == "half" else 15 if "quarter" in amount else int(amount)
        if minutes >= 60 or hour > 23:
            return None, None
        meridiem = found.group(4) or meridiem_hint
        if relation in ("past", "after"):
            return _clock(hour, minutes, meridiem), None
        full_hour = _clock(hour, 0, meridiem)       # "quarter to 5": 15 minutes before 5 o'clock
        if full_hour is None:
            return None, None
        total = (full_hour.hour * 60 - minutes) % (24 * 60)
        return time(total // 60, total % 60), None
    found = _CLOCK.search(text)
    if found:
        g = found.groups()
        if g[0]:
            return _clock(int(g[0]), int(g[1]), g[2] or meridiem_hint), None
        if g[3]:
            return _clock(int(g[3]), int(g[4]), None if g[5] == "hours" else g[5] or meridiem_hint,
                          twenty_four=g[5] == "hours"), None
        if g[6]:
            return _clock(int(g[6]), int(g[7]), g[8] or meridiem_hint), None
        if g[9]:
            return _clock(int(g[9]), 0, g[10]), None
        return _clock(int(g[11]), 0, meridiem_hint), None
    found = _BARE_HOUR.search(text) or _HOUR_THEN_DAYPART.search(text) or _ONLY_HOUR.fullmatch(text.strip())
    if found:
        return _clock(int(found.group(1)), 0, meridiem_hint), None
    if daypart:
        return time(*_DAYPART_TIME[daypart]), None
    return None, None


def _clock(hour: int, minute: int, meridiem: str | None, *, twenty_four: bool = False) -> time | None:
    """A wall-clock time from what was said."""
    if minute > 59 or hour > 23 or (meridiem and hour > 12):
        return None
    if twenty_four or hour == 0 or hour > 12:
        return time(hour, minute)
    if meridiem == "am":
        return time(0 if hour == 12 else hour, minute)
    if meridiem == "pm":
        return time(12 if hour == 12 else hour + 12, minute)
    # No am/pm said: business hours on the telephone (see the module docstring).
    return time(hour + 12 if 1 <= hour <= 6 else hour, minute)

"""Dates and times against a fixed clock: Thursday 2026-12-03 10:00 in New York."""

from datetime import date, datetime, time

import pytest
from dialtone.language.when import extract_date, extract_datetime, extract_time

NOW = datetime(2026, 12, 3, 10, 0)
TZ = "America/New_York"

DATES = [
    ("next tuesday", date(2026, 12, 8)),
    ("Next Tuesday.", date(2026, 12, 8)),
    ("tuesday", date(2026, 12, 8)),
    ("this friday", date(2026, 12, 4)),
    ("friday", date(2026, 12, 4)),
    ("on saturday please", date(2026, 12, 5)),
    ("sunday", date(2026, 12, 6)),
    ("thursday", date(2026, 12, 3)),
    ("next thursday", date(2026, 12, 10)),
    ("this coming monday", date(2026, 12, 7)),
    ("last monday", date(2026, 11, 30)),
    ("monday next week", date(2026, 12, 7)),
    ("wednesday next week", date(2026, 12, 9)),
    ("tuesday after next", date(2026, 12, 15)),
    ("today", date(2026, 12, 3)),
    ("tomorrow", date(2026, 12, 4)),
    ("tomorrow morning", date(2026, 12, 4)),
    ("the day after tomorrow", date(2026, 12, 5)),
    ("yesterday", date(2026, 12, 2)),
    ("the third", date(2026, 12, 3)),
    ("the fifth", date(2026, 12, 5)),
    ("the 2nd", date(2027, 1, 2)),
    ("on the first", date(2027, 1, 1)),
    ("the twenty first", date(2026, 12, 21)),
    ("december fifth", date(2026, 12, 5)),
    ("December 5th", date(2026, 12, 5)),
    ("dec 24", date(2026, 12, 24)),
    ("the fifth of december", date(2026, 12, 5)),
    ("twenty fifth of december", date(2026, 12, 25)),
    ("5 december", date(2026, 12, 5)),
    ("january tenth", date(2027, 1, 10)),
    ("march third", date(2027, 3, 3)),
    ("november 30th", date(2027, 11, 30)),
    ("december fifth twenty twenty seven", date(2027, 12, 5)),
    ("december 5 2027", date(2027, 12, 5)),
    ("July 4th, 2027", date(2027, 7, 4)),
    ("12/25", date(2026, 12, 25)),
    ("1/15/2027", date(2027, 1, 15)),
    ("2027-02-14", date(2027, 2, 14)),
    ("in three days", date(2026, 12, 6)),
    ("in a week", date(2026, 12, 10)),
    ("a week from today", date(2026, 12, 10)),
    ("two weeks from now", date(2026, 12, 17)),
    ("3 days ago", date(2026, 11, 30)),
    ("next tuesday at three pm", date(2026, 12, 8)),
    ("um how about next tuesday", date(2026, 12, 8)),
    ("can i come in on friday at noon", date(2026, 12, 4)),
    ("tuesday the eighth", date(2026, 12, 8)),
    ("friday the eighth", date(2027, 1, 8)),
    ("tonight", date(2026, 12, 3)),
    ("in two hours", date(2026, 12, 3)),
    ("february thirtieth", None),
    ("i don't know", None),
    ("yes", None),
    ("the 45th", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_date(text, expected):
    assert extract_date(text, now=NOW, tz=TZ) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("december fifth", date(2025, 12, 5)),
    ("may 3rd 1984", date(1984, 5, 3)),
    ("may third nineteen eighty four", date(1984, 5, 3)),
    ("tuesday", date(2026, 12, 1)),
    ("the fifth", date(2026, 11, 5)),
    ("the third", date(2026, 12, 3)),
])
def test_date_preferring_the_past(text, expected):
    assert extract_date(text, now=NOW, tz=TZ, prefer="past") == expected


def test_an_aware_clock_is_read_in_the_dialogs_zone():
    # 02:00 UTC on the 4th is still the 3rd, 21:00, in New York.
    from datetime import UTC
    assert extract_date("tomorrow", now=datetime(2026, 12, 4, 2, 0, tzinfo=UTC), tz=TZ) == date(2026, 12, 4)
    assert extract_date("tomorrow", now=datetime(2026, 12, 4, 2, 0, tzinfo=UTC), tz="UTC") == date(2026, 12, 5)


TIMES = [
    ("3 pm", time(15, 0)),
    ("three pm", time(15, 0)),
    ("3 p.m.", time(15, 0)),
    ("three p m", time(15, 0)),
    ("3:30 pm", time(15, 30)),
    ("three thirty", time(15, 30)),
    ("three thirty pm", time(15, 30)),
    ("330 pm", time(15, 30)),
    ("half past two", time(14, 30)),
    ("half past ten", time(10, 30)),
    ("quarter past four", time(16, 15)),
    ("a quarter to five", time(16, 45)),
    ("quarter to nine", time(8, 45)),
    ("ten past three", time(15, 10)),
    ("twenty to six", time(17, 40)),
    ("nine oh five a m", time(9, 5)),
    ("9:05 am", time(9, 5)),
    ("noon", time(12, 0)),
    ("at noon", time(12, 0)),
    ("midnight", time(0, 0)),
    ("twelve fifteen", time(12, 15)),
    ("12:30 pm", time(12, 30)),
    ("12 am", time(0, 0)),
    ("eleven forty five", time(11, 45)),
    ("at 10", time(10, 0)),
    ("around 2", time(14, 0)),
    ("five", time(17, 0)),
    ("7", time(7, 0)),
    ("8 o'clock", time(8, 0)),
    ("eight o'clock tonight", time(20, 0)),
    ("at 8 tonight", time(20, 0)),
    ("seven thirty in the evening", time(19, 30)),
    ("at 2 in the afternoon", time(14, 0)),
    ("10 in the morning", time(10, 0)),
    ("tomorrow morning", time(9, 0)),
    ("this afternoon", time(15, 0)),
    ("tonight", time(20, 0)),
    ("in the evening", time(18, 0)),
    ("1500 hours", time(15, 0)),
    ("15:45", time(15, 45)),
    ("in two hours", time(12, 0)),
    ("in 30 minutes", time(10, 30)),
    ("in half an hour", time(10, 30)),
    ("in an hour and a half", time(11, 30)),
    ("next tuesday at three pm", time(15, 0)),
    ("next tuesday at 3", time(15, 0)),
    ("the third at five", time(17, 0)),
    ("how about 4 thirty", time(16, 30)),
    ("right now", time(10, 0)),
    ("i don't know", None),
    ("yes", None),
    ("13 pm", None),
    ("in three days", None),
    ("i need 2 pills", None),
    ("december fifth", None),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_time(text, expected):
    assert extract_time(text, now=NOW, tz=TZ) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("next tuesday at three pm", "2026-12-08T15:00:00-05:00"),
    ("tomorrow at half past nine", "2026-12-04T09:30:00-05:00"),
    ("3 pm", "2026-12-03T15:00:00-05:00"),
    ("8 am", "2026-12-04T08:00:00-05:00"),       # already gone today
    ("in two hours", "2026-12-03T12:00:00-05:00"),
    ("december fifth", None),                    # no time said
])
def test_datetime(text, expected):
    found = extract_datetime(text, now=NOW, tz=TZ)
    assert (found.isoformat() if found else None) == expected

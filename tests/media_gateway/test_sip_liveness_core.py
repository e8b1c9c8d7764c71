"""The liveness core and the sippy error reporter, without sockets."""

from __future__ import annotations

import logging

import pytest
from dialtone.media_gateway.sip_liveness import SelfCheck, parse_answer, probe_request
from dialtone.media_gateway.sip_stack import STACK_ERRORS, _report_sippy_exception
from dialtone.media_gateway.sip_syntax import read_request, split_message


def test_probe_every_interval_and_fail_after_consecutive_misses() -> None:
    """One probe per interval; three unanswered in a row fail the check; an answer resets the count."""
    check = SelfCheck(interval_s=1.0, answer_within_s=2.0, misses=3)
    first = check.poll(0.0)
    assert first is not None and check.poll(0.5) is None
    check.answered(first, 200, 0.1)
    sent = [check.poll(t) for t in (1.0, 2.0, 3.0)]
    assert all(sent) and not check.failing
    check.poll(4.0)   # the probe sent at 1.0 expired at 3.0 and the one at 2.0 at 4.0
    assert check.consecutive_misses == 2 and not check.failing
    check.poll(5.0)
    assert check.failing
    latest = check.poll(6.0)
    assert latest is not None
    check.answered(latest, 200, 6.5)
    assert check.consecutive_misses == 0 and not check.failing


def test_late_wrong_or_foreign_answers_do_not_count() -> None:
    """Only a 200 for a pending probe before its deadline resets the misses."""
    check = SelfCheck(interval_s=1.0, answer_within_s=1.0, misses=1)
    probe = check.poll(0.0)
    assert probe is not None
    check.answered(probe, 503, 0.5)
    check.answered("someone-else", 200, 0.5)
    check.poll(1.0)
    assert check.failing
    later = check.poll(2.0)
    assert later is not None
    check.answered(later, 200, 3.5)   # after its deadline
    check.poll(3.5)
    assert check.failing


def test_probe_is_a_valid_request_and_answers_parse() -> None:
    """The probe passes our own strict reader; an answer gives back (Call-ID, status)."""
    data = probe_request("dialtone-liveness-ab12-7", ("::1", 40000), ("::1", 5060))
    request = read_request(split_message(data))
    assert request.method == "OPTIONS"
    assert parse_answer(b"SIP/2.0 200 OK\r\nVia: x\r\ni: dialtone-liveness-ab12-7\r\n\r\n") == (
        "dialtone-liveness-ab12-7", 200)
    assert parse_answer(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n") is None
    assert parse_answer(b"SIP/2.0 2\xef\xbc\x90\xef\xbc\x90 OK\r\nCall-ID: x\r\n\r\n") is None


def test_sippy_exceptions_become_counted_rate_limited_lines(caplog: pytest.LogCaptureFixture) -> None:
    """sippy's dump_exception replacement: every call counted, one log line (not a traceback) per kind."""
    where = "cant parse sip request"
    before = STACK_ERRORS.labels(where)._value.get()
    with caplog.at_level(logging.WARNING, logger="dialtone.media_gateway.sip_stack"):
        for _ in range(100):
            try:
                int(":::sip.no.invalid")
            except ValueError:
                _report_sippy_exception("can't parse SIP request from 127.0.0.1:5060", extra="datagram")
    assert STACK_ERRORS.labels(where)._value.get() - before == 100
    assert len(caplog.records) == 1
    assert "ValueError" in caplog.records[0].getMessage() and not caplog.records[0].exc_info

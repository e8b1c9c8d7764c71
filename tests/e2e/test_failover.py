"""Failures during a call, with every part real: the conversation runtime killed mid-call (`dialtone up`
restarts it; the speech gateway resumes the session from the SQLite store), and the example backend
stopped (the dialog's error branch is spoken)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dialtone.caller.script import heard_contains

from tests.e2e.support import Stack, call, finish_call, start_call

ORDER = "one two three four five"
GREETING_S = 6.5        # the greeting's length on the wire, and a little more


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("up"))
    yield running
    running.stop()


def wait_for_log(stack: Stack, text: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.log().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged:\n" + stack.log()[-3000:]
        time.sleep(0.05)


def test_runtime_killed_mid_call_resumes_in_the_same_state_without_repeating_actions(
        stack: Stack, tmp_path: Path) -> None:
    answered = stack.log().count("answered call")
    lookups = stack.log().count("orders.get_status GET /orders/12345")
    proc = start_call(stack, "--wait", "speech", "--silence", "4", "--say", ORDER, "--expect", "tuesday",
                      folder=tmp_path, name="failover")
    wait_for_log(stack, "answered call", answered + 1)
    time.sleep(GREETING_S)          # the greeting has played; the caller is in its silence step
    victim = stack.child("conversation-runtime")
    os.kill(victim, signal.SIGKILL)
    code, report, output = finish_call(proc, tmp_path, "failover")
    assert "conversation-runtime exited" in stack.log()
    assert code == 0, output + stack.log()[-4000:]
    # the session went on from the greet state: the greeting was not played again, the backend called once
    assert sum(heard_contains(text, "welcome") for text in report["heard"]) == 1, output
    assert stack.log().count("orders.get_status GET /orders/12345") == lookups + 1


def test_backend_stopped_the_dialog_speaks_its_error_branch(stack: Stack, tmp_path: Path) -> None:
    backend = stack.child("example-backend")
    os.kill(backend, signal.SIGSTOP)    # stopped, not dead: `dialtone up` would restart a dead one
    try:
        code, report, output = call(stack, "--say", ORDER, "--expect", "not answering", folder=tmp_path,
                                    name="backend_down")
    finally:
        os.kill(backend, signal.SIGCONT)
    assert code == 0, output
    assert not any(heard_contains(text, "tuesday") for text in report["heard"]), output

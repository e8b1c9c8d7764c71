"""Generated requests to every public RPC of the four services, against the real processes.

Each answer is OK or a specific refusal with a short message. Streams are also abandoned in the
middle of a call (cancelled, or their channel closed, without half-closing first). After each test
every service is SERVING, holds no stream, call or media session beyond what it held before, every
backend breaker is closed and a normal backend call succeeds (``Stack.assert_clean``).
"""

from __future__ import annotations

import time
from collections import Counter

import grpc
import pytest
from dialtone.v1 import integration_gateway_pb2 as ig
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz import issue21
from tests.fuzz.rpcs import (
    RPCS,
    Answer,
    abandon_endings,
    check_status,
    linger_s,
    path,
    public_rpcs,
    stream,
    unary,
)
from tests.fuzz.settings import fuzzed
from tests.fuzz.stack import Stack
from tests.fuzz.strategies import Shown, brief, weighted

pytestmark = pytest.mark.slow  # every service as a process, the speech models loaded

# Examples per RPC in `make test` (DIALTONE_FUZZ_EXAMPLES overrides): the suite stays within two minutes.
EXAMPLES = {"invoke": 300, "originate": 150, "list_calls": 20, "hangup_call": 150, "converse": 200, "stream_call": 150}
ABANDONED = {"converse": 60, "stream_call": 60}
# The same request again and again, as a client that retries what was refused (issue 21 item 1: five times).
repeats = weighted((st.just(1), 4), (st.just(6), 1))
STREAMING = sorted(name for name, rpc in RPCS.items() if rpc.method.client_streaming)


def test_every_public_rpc_is_fuzzed() -> None:
    """An RPC added to proto/dialtone/v1 fails here until it is in RPCS."""
    assert {path(rpc.method) for rpc in RPCS.values()} == public_rpcs()
    assert set(EXAMPLES) == set(RPCS) and set(ABANDONED) == set(STREAMING)


def check_replies(name: str, answer: Answer) -> None:
    if name == "stream_call":
        hangups = [m.hangup.reason for m in answer.replies if m.WhichOneof("payload") == "hangup"]
        # The runtime is up the whole time: a refusal of the runtime's is not its absence.
        assert "runtime_unavailable" not in hangups, f"hung up as runtime_unavailable; status {answer.code.name}"
    if name == "invoke" and answer.replies:
        result = answer.replies[0]
        assert len(result.error_message) <= 512, \
            f"error_message of {len(result.error_message)} characters: {brief(result.error_message)}"
        # The example backend answers every request at once and never fails: an open breaker was opened
        # by callers' requests, and now refuses everyone's (issue 21 item 1).
        assert result.error_kind != ig.ERROR_KIND_BREAKER_OPEN, f"breaker open: {result.error_message}"


def _report(name: str, started: float, seen: Counter[str]) -> None:
    print(f"{name}: {time.monotonic() - started:.1f} s {dict(seen)}")


@pytest.mark.parametrize("name", sorted(RPCS))
def test_rpc_answers_generated_requests_specifically(stack: Stack, name: str) -> None:
    rpc = RPCS[name]
    strategy = rpc.requests(stack).map(Shown)
    baseline = stack.baseline()
    started = time.monotonic()
    seen: Counter[str] = Counter()

    def one(shown: Shown, times: int) -> None:
        for _ in range(times):
            if rpc.method.client_streaming:
                answer = stream(stack, rpc.service, rpc.method, shown.value)
                assert answer is not None
            else:
                answer = unary(stack, rpc.service, rpc.method, shown.value)
            seen[answer.code.name + (f" {ig.ErrorKind.Name(answer.replies[0].error_kind)}"
                                     if name == "invoke" and answer.replies else "")] += 1
            if name == "originate" and answer.code == grpc.StatusCode.OK:
                stack.originated.add(answer.replies[0].session_id)  # hung up by assert_clean
            check_status(answer, shown.value if rpc.method.client_streaming else [shown.value])
            check_replies(name, answer)

    test = given(shown=strategy, times=repeats)(one)
    # The issue's reproductions first, every run: explicit examples come before the generated ones.
    for _, build in issue21.REFUSED.get(name, []):
        test = example(shown=Shown(build("ex")), times=1)(test)
    for _, build, times in issue21.REPEATED.get(name, []):
        test = example(shown=Shown(build("ex")), times=times)(test)
    fuzzed(EXAMPLES[name])(test)()
    _report(name, started, seen)
    stack.assert_clean(baseline)


@pytest.mark.parametrize("name", STREAMING)
def test_abandoned_streams_leave_nothing_behind(stack: Stack, name: str) -> None:
    rpc = RPCS[name]
    strategy = rpc.requests(stack).map(Shown)
    baseline = stack.baseline()
    started = time.monotonic()
    seen: Counter[str] = Counter()

    def one(shown: Shown, ending: str, linger: float) -> None:
        stream(stack, rpc.service, rpc.method, shown.value, ending, linger)
        seen[ending] += 1

    test = given(shown=strategy, ending=abandon_endings, linger=linger_s)(one)
    for build, ending, linger in issue21.ABANDONED.get(name, []):
        test = example(shown=Shown(build("ex")), ending=ending, linger=linger)(test)
    fuzzed(ABANDONED[name])(test)()
    _report(f"{name} abandoned", started, seen)
    stack.assert_clean(baseline)

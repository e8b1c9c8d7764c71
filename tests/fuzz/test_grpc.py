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
from hypothesis import given

from tests.fuzz.rpcs import (
    RPCS,
    Answer,
    abandon_endings,
    check_status,
    linger_s,
    path,
    public_rpcs,
    short,
    stream,
    unary,
)
from tests.fuzz.settings import fuzzed
from tests.fuzz.stack import Stack
from tests.fuzz.strategies import Shown

# Examples per RPC in `make test` (DIALTONE_FUZZ_EXAMPLES overrides): the suite stays within two minutes.
EXAMPLES = {"invoke": 300, "originate": 150, "list_calls": 20, "hangup_call": 150, "converse": 200, "stream_call": 150}
ABANDONED = {"converse": 60, "stream_call": 60}
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
        message = answer.replies[0].error_message
        assert len(message) <= 512, f"error_message of {len(message)} characters: {short(message)}"


def _report(name: str, started: float, seen: Counter[str]) -> None:
    print(f"{name}: {time.monotonic() - started:.1f} s {dict(seen)}")


@pytest.mark.parametrize("name", sorted(RPCS))
def test_rpc_answers_generated_requests_specifically(stack: Stack, name: str) -> None:
    rpc = RPCS[name]
    strategy = rpc.requests(stack).map(Shown)
    baseline = stack.held()
    started = time.monotonic()
    seen: Counter[str] = Counter()

    @fuzzed(EXAMPLES[name])
    @given(shown=strategy)
    def one(shown: Shown) -> None:
        if rpc.method.client_streaming:
            answer = stream(stack, rpc.service, rpc.method, shown.value)
            assert answer is not None
        else:
            answer = unary(stack, rpc.service, rpc.method, shown.value)
        seen[answer.code.name] += 1
        if name == "originate" and answer.code == grpc.StatusCode.OK:
            stack.originated.add(answer.replies[0].session_id)  # hung up by assert_clean
        check_status(answer, shown.value if rpc.method.client_streaming else [shown.value])
        check_replies(name, answer)

    one()
    _report(name, started, seen)
    stack.assert_clean(baseline)


@pytest.mark.parametrize("name", STREAMING)
def test_abandoned_streams_leave_nothing_behind(stack: Stack, name: str) -> None:
    rpc = RPCS[name]
    strategy = rpc.requests(stack).map(Shown)
    baseline = stack.held()
    started = time.monotonic()
    seen: Counter[str] = Counter()

    @fuzzed(ABANDONED[name])
    @given(shown=strategy, ending=abandon_endings, linger=linger_s)
    def one(shown: Shown, ending: str, linger: float) -> None:
        stream(stack, rpc.service, rpc.method, shown.value, ending, linger)
        seen[ending] += 1

    one()
    _report(f"{name} abandoned", started, seen)
    stack.assert_clean(baseline)

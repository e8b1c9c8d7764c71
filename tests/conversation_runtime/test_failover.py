"""Sessions outlive runtime processes: a call moves to a second process when the first is killed,
and a call with no stream is parked from the store after a restart, its timers firing once it is
resumed. Both stores."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from dialtone.conversation_runtime.config import EXAMPLES_DIR

from tests.conversation_runtime.support import Stream, call_started, kinds, resume, start_gateway, transcript

QUICK = """\
dialog:
  name: quick
  initial: wait
  states:
    wait:
      on_enter: [{say: "waiting"}]
      transitions:
        - event: timeout
          after: 2s
          target: later
        - event: speech
          target: wait
    later:
      on_enter: [{say: "timer fired"}, {hangup: timer}]
"""


@pytest.fixture(params=["sqlite", "redis"])
async def runtime_env(request, tmp_path: Path):
    server, servicer, address = await start_gateway()
    dialogs = tmp_path / "dialogs"
    shutil.copytree(EXAMPLES_DIR, dialogs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (dialogs / "quick.yaml").write_text(QUICK)
    prefix = "DIALTONE_CONVERSATION_RUNTIME__"
    env = {prefix + "INTEGRATION_ADDRESS": address, prefix + "DIALOGS": f"[{dialogs}]",
           prefix + "LEASE_TTL_S": "1", prefix + "TIMER_POLL_S": "0.1", prefix + "STORE__KIND": request.param}
    if request.param == "redis":
        env[prefix + "STORE__URL"] = request.getfixturevalue("redis_server")
    else:
        env[prefix + "STORE__PATH"] = str(tmp_path / "sessions.sqlite3")
    yield env, servicer
    await server.stop(0)


async def test_call_moves_to_a_second_process_without_reissuing(runtime_env, start_service) -> None:
    """Kill the first runtime mid-call; the resumed stream on the second continues from the store."""
    env, gateway = runtime_env
    first = start_service("conversation-runtime", env=env)
    stream = Stream(first.address)
    await stream.send(call_started("m1", dialog="appointment_booking"))
    assert kinds(await stream.read(2)) == ["state_changed", "say"]
    await stream.send(transcript("m1", 2, "Tuesday"))
    actions = await stream.read(2)
    assert actions[1].say.text.startswith("At what time on Tuesday, ") and actions[1].seq == 4
    first.proc.kill()
    first.proc.wait(10)
    await stream.close()

    second = start_service("conversation-runtime", env=env)
    moved = Stream(second.address)
    await moved.send(resume("m1", last_event_seq=2, last_action_seq=4))
    await moved.send(transcript("m1", 3, "10 am"))
    actions = await moved.read(2)
    assert [a.seq for a in actions] == [5, 6]  # nothing at or before seq 4 is issued again
    assert actions[1].say.text.startswith("Shall I book Tuesday, ") and "at ten a.m." in actions[1].say.text
    await moved.send(transcript("m1", 4, "yes"))
    actions = await moved.read_until("say")
    assert "confirmation code is A, B, one, two." in actions[-1].say.text
    assert [(r.service, r.idempotency_key) for r in gateway.requests] == [("appointments", "m1:4:1")]
    await moved.close()


async def test_call_of_a_dead_replica_is_parked_and_its_timer_fires_on_resume(runtime_env, start_service) -> None:
    """A call whose runtime died is parked by the next runtime (no timer fires without a stream, no
    one would hear it); once the call is resumed, its timer, long due, fires at once."""
    env, _ = runtime_env
    first = start_service("conversation-runtime", env=env)
    stream = Stream(first.address)
    await stream.send(call_started("t1", dialog="quick"))
    assert kinds(await stream.read(2)) == ["state_changed", "say"]
    first.proc.kill()
    first.proc.wait(10)
    await stream.close()

    second = start_service("conversation-runtime", env=env)
    for _ in range(300):
        if any(e.get("msg", "").startswith("call has no stream: parked") for e in second.log_events()):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the call was never parked:\n{second.log_text()}")
    assert not any("timer" in e.get("msg", "") for e in second.log_events())
    moved = Stream(second.address)
    await moved.send(resume("t1", last_event_seq=1, last_action_seq=2))
    actions = await moved.read(3)
    assert kinds(actions) == ["state_changed", "say", "hangup"]
    assert actions[1].say.text == "timer fired" and [a.seq for a in actions] == [3, 4, 5]
    await moved.close()

"""`python -m bench.e2e_turn_latency --smoke`: the turn-latency bench runs end to end (dialtone up, the
caller saying recorded numbers, the runtime sending the state's expectation, a proxy counting finals) and
reports every turn.
Its figures are not checked here: timings belong to the bench, on a quiet machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(420)
def test_the_turn_latency_bench_smoke_run_reports_every_turn(tmp_path: Path) -> None:
    out = tmp_path / "turns.json"
    done = subprocess.run([sys.executable, "-m", "bench.e2e_turn_latency", "--smoke", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    turns = summary["turns"]
    # --smoke: 2 clean turns (the second repeats the first number) and 1 with a pause inside; the
    # expectation is the one the runtime sends (the bench dialog collects digits)
    assert sorted(t["kind"] for t in turns) == ["fresh", "paused", "repeat"]
    repeat = next(t for t in turns if t["kind"] == "repeat")
    assert repeat["digits"] in {t["digits"] for t in turns if t["kind"] == "fresh"}
    assert all(t["said_ms"] > 1000 for t in turns)
    # each utterance was answered after it ended or counted as cut off, never both, never lost
    for turn in turns:
        assert (turn["latency_ms"] is None) != (turn["cut_off_ms"] is None), turn
    assert summary["paused"] == 1 and summary["expectation"] == "runtime"
    assert len(summary["fresh_ms"]) + len(summary["cached_ms"]) + summary["clean_cut_offs"] == 2
    assert summary["finals"] >= 3 and len(summary["transcripts"]) == 1
    assert "fresh reply (new to the TTS): p50" in done.stdout and "false cut-offs:" in done.stdout
    assert set(summary["eager_replies"]) == {"prepared", "committed", "cancelled", "unused"}

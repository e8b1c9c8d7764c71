"""The pure parts of `dialtone load` and `bench.soak`: load scripts (values drawn per call, phrases),
the services' figures across restarts, calls up over time, and the soak's checks."""

from __future__ import annotations

import random

import pytest
from dialtone.caller.load import calls_up, latency_stats, service_figures
from dialtone.caller.load_script import DEFAULT_SCRIPT, parse_load_script
from dialtone.caller.script import ScriptError, Step

from bench.soak import check_calls, check_flat, growth_per_10_min

SCRIPT = """
call: sip:order_status@127.0.0.1:5060
vary:
  order: {digits: 4}
  name: {choice: [Alice, Bob Smith]}
steps:
  - say: "my name is {name} and my order is {order}"
  - dtmf: "{order}#"
  - expect: "order {order}"
  - wav: "lines/{name}.wav"
  - wait: bye
"""


def test_values_go_into_every_step_and_say_lines_are_phrases() -> None:
    script = parse_load_script(SCRIPT, "s.yaml")
    steps = script.steps_for({"order": "4711", "name": "Bob Smith"})
    assert steps[0] == Step("say", "my name is Bob Smith and my order is four seven one one",
                            phrases=("my name is", "Bob Smith", "and my order is", "four", "seven", "one", "one"))
    assert steps[1] == Step("dtmf", "4711#")
    assert steps[2] == Step("expect", "order 4711")
    assert steps[3] == Step("wav", "lines/Bob Smith.wav")
    assert script.expects() and script.uri == "sip:order_status@127.0.0.1:5060"
    # every phrase a call can need, to render before the first call: each digit 1-9, each name
    assert set(script.phrases()) == {"my name is", "and my order is", "Alice", "Bob Smith", "one", "two", "three",
                                     "four", "five", "six", "seven", "eight", "nine"}


def test_values_are_fresh_per_call_and_not_repeated_in_a_run() -> None:
    script = parse_load_script(DEFAULT_SCRIPT, "default")
    rng, used = random.Random(3), set()
    orders = [script.draw(rng, used)["order"] for _ in range(300)]
    assert len(set(orders)) == 300
    assert all(len(o) == 5 and "0" not in o for o in orders)
    assert not script.expects()
    assert script.steps_for({"order": "12345"})[0].phrases == ("one", "two", "three", "four", "five")


@pytest.mark.parametrize(("text", "message"), [
    ("vary: {order: {digits: 13}}\nsteps: [{say: '{order}'}]", "vary.order: digits must be a whole number"),
    ("vary: {order: {letters: 3}}\nsteps: [{say: '{order}'}]", "vary.order: unknown kind 'letters'"),
    ("vary: {who: {choice: []}}\nsteps: [{say: '{who}'}]", "vary.who: choice must be a list of 1..1000"),
    ("steps: [{say: 'order {order}'}]", "steps[0]: {order} is not a name under 'vary'"),
    ("vary: {order: {digits: 3}}\nsteps: [{dtmf: 'x{order}'}]", "steps[0]: dtmf digits must be 0-9"),
    ("vary: [1]\nsteps: [hangup]", "'vary' must be a mapping"),
    ("rate: 3\nsteps: [hangup]", "unknown key(s) rate; expected call, timeout, vary, steps"),
])
def test_bad_load_scripts_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse_load_script(text, "bad.yaml")
    assert message in str(info.value) and "bad.yaml" in str(info.value)


def test_service_cpu_counts_a_restarted_process_from_its_start() -> None:
    # rows: t, rss, cpu_s, fds, started; the process restarted (new start time) at t=20
    rows = [[0.0, 100e6, 10.0, 20, 1000.0], [10.0, 110e6, 12.0, 22, 1000.0], [15.0, None, None, None, None],
            [20.0, 50e6, 1.0, 18, 2000.0], [40.0, 60e6, 3.0, 19, 2000.0]]
    figures = service_figures(rows)
    # 2 s in the first life, then 1 + 2 s in the second (its counter started at 0), over 40 s
    assert figures["cpu_percent"] == pytest.approx(100.0 * 5.0 / 40.0)
    assert figures["restarts"] == 1 and figures["unavailable_samples"] == 1
    assert figures["rss_mb"] == {"first": 100.0, "last": 60.0, "max": 110.0}
    assert figures["open_fds"] == {"first": 20, "last": 19, "max": 22}
    assert service_figures([[0.0, None, None, None, None]]) == {"available": False, "samples": 1,
                                                                "unavailable_samples": 1}


def test_calls_up_and_latency_stats() -> None:
    records = [{"started_s": 0.0, "ended_s": 10.0}, {"started_s": 2.0, "ended_s": 5.0},
               {"started_s": 6.0, "ended_s": 12.0}]
    assert calls_up(records) == [[0.0, 1], [2.0, 2], [5.0, 1], [6.0, 2], [10.0, 1], [12.0, 0]]
    stats = latency_stats([float(x) for x in range(1, 101)])
    assert stats["count"] == 100 and stats["p50"] == 50.5 and stats["max"] == 100.0 and stats["p99"] == 99.0
    assert latency_stats([])["p95"] is None


def test_growth_is_the_median_slope_so_calls_coming_and_going_are_not_growth() -> None:
    # busy every other sample (calls up), and two samples down while a peer restarted
    flat_but_busy = [(float(t), 100.0 + (20.0 if (t // 10) % 2 else 0.0) - (30.0 if t in (200, 210) else 0.0))
                     for t in range(0, 600, 10)]
    assert growth_per_10_min(flat_but_busy) == pytest.approx(0.0)
    leaking = [(float(t), 100.0 + t / 60.0 + (20.0 if (t // 10) % 2 else 0.0)) for t in range(0, 600, 10)]
    # +10 units over 10 minutes against a median of about 115
    assert growth_per_10_min(leaking) == pytest.approx(1000.0 / 115.0, rel=0.05)
    assert growth_per_10_min([(0.0, 1.0), (1.0, 1.0)]) is None


def test_flat_check_judges_each_process_life_after_its_warm_up() -> None:
    t0 = 10_000.0
    leaking = [[float(t), (100.0 + t / 60.0) * 1e6, 0.0, 20.0, t0 - 5] for t in range(0, 900, 10)]
    short_life = [[float(t), 80e6 * (1 + t / 100), 0.0, 20.0, t0 + 900] for t in range(900, 1000, 10)]
    report = check_flat({"speech-gateway": leaking + short_life}, t0, warmup_s=60.0, min_window_s=300.0)
    lives = report["services"]["speech-gateway"]["processes"]
    assert [life["judged"] for life in lives] == [True, False]     # the second lived 100 s: reported only
    assert lives[0]["rss_growth_pct_per_10min"] > 5.0 and lives[0]["flat"] is False
    assert report["ok"] is False and report["judged"] == 1


def test_one_open_file_more_after_a_restart_is_a_step_not_a_leak() -> None:
    t0 = 10_000.0
    step = [[float(t), 100e6, 0.0, 21.0 if t < 200 else 22.0, t0] for t in range(0, 500, 5)]
    leak = [[float(t), 100e6, 0.0, 21.0 + t // 60, t0] for t in range(0, 500, 5)]     # a file a minute
    report = check_flat({"conversation-runtime": step, "media-gateway": leak}, t0, warmup_s=0.0, min_window_s=300.0)
    stepped, leaking = (report["services"][name]["processes"][0] for name in ("conversation-runtime",
                                                                              "media-gateway"))
    assert stepped["flat"] is True and stepped["fds_trend_over_window"] < 2.0
    assert leaking["flat"] is False and leaking["fds_growth_pct_per_10min"] > 5.0


def test_a_call_left_hanging_fails_the_calls_check_unless_a_kill_was_near() -> None:
    def record(index: int, start: float, end: float, kinds: list[str], ended_by: str) -> dict:
        return {"index": index, "started_s": start, "ended_s": end, "ended_by": ended_by,
                "failures": [{"kind": kind, "message": ""} for kind in kinds]}

    records = [record(0, 0.0, 20.0, [], "bot_hangup"), record(1, 5.0, 40.0, ["rtp_timeout"], "rtp_timeout"),
               record(2, 50.0, 90.0, ["wait_timeout"], "caller_hangup")]
    hit_near_kill = check_calls(records, windows=[(30.0, 45.0)])
    assert hit_near_kill["hanging_outside_chaos"] == [2] and not hit_near_kill["ok"]
    assert check_calls(records, windows=[(30.0, 45.0), (60.0, 70.0)])["ok"]
    assert check_calls([record(0, 0.0, 1.0, [], "")], windows=[])["without_reason"] == [0]

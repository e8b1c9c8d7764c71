"""Barge-in reaction on the wire: the caller talks over a long prompt that allows barge-in (bench_barge
dialog under `dialtone up`); reaction = the first frame of its speech sent -> the arrival of the
prompt's last non-silent RTP packet.

    python -m bench.e2e_barge_in [--samples 40] [--budget-s 300] [--no-hold] [--hold-after-ms N]

--no-hold measures the prompt playing on until the verdict (barge_in.hold_on_speech off), the way it
was before the hold at onset; --hold-after-ms 0 holds at the start of speech, not on its first voiced
frames (barge_in.hold_after_ms); run them beside the default for the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from dialtone.caller.phone import Phone
from dialtone.caller.voices import Voices

from bench.e2e_turn_latency import UpStack, percentiles, run_callers


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(4733)
    reactions: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-") as folder:
        env = {"DIALTONE_SPEECH_GATEWAY__BARGE_IN__HOLD_ON_SPEECH": "false" if args.no_hold else "true"}
        if args.hold_after_ms is not None:
            env["DIALTONE_SPEECH_GATEWAY__BARGE_IN__HOLD_AFTER_MS"] = str(args.hold_after_ms)
        if args.backchannel_ms is not None:
            env["DIALTONE_SPEECH_GATEWAY__BARGE_IN__BACKCHANNEL_MAX_MS"] = str(args.backchannel_ms)
        stack = UpStack(Path(folder), env)
        try:
            voices = await Voices.load()
            phone = Phone("127.0.0.1")
            await phone.start()
            try:
                await run_callers(phone, voices, stack.uri("bench_barge"), 1, 1, rng, interrupt=True)  # warm-up
                speech_before = stack.metrics(2)
                started = time.monotonic()
                while len(reactions) < args.samples and time.monotonic() - started < args.budget_s:
                    per_call = min(10, args.samples - len(reactions))
                    for report in await run_callers(phone, voices, stack.uri("bench_barge"), 1, per_call, rng,
                                                    interrupt=True):
                        reactions += report["barge_in_ms"]
                        for failure in report["failures"]:
                            print("  call problem:", failure)
                speech_after = stack.metrics(2)
            finally:
                await phone.stop()
                voices.close()
        finally:
            stack.stop()
    name = "dialtone_speech_barge_in_reaction_seconds"
    count = speech_after.get(name + "_count", 0) - speech_before.get(name + "_count", 0)
    decided = (speech_after.get(name + "_sum", 0) - speech_before.get(name + "_sum", 0)) / count * 1000 if count else 0
    policy = "backchannel_max_ms " + ("default" if args.backchannel_ms is None else str(args.backchannel_ms))
    policy += ", prompt " + ("plays on until the verdict" if args.no_hold else "held at speech onset")
    if args.hold_after_ms is not None and not args.no_hold:
        policy += f" (hold_after_ms {args.hold_after_ms})"
    holds = "dialtone_speech_prompt_holds_total"
    released = sum(v - speech_before.get(k, 0) for k, v in speech_after.items()
                   if k.startswith(holds + "{") and 'outcome="released"' in k)
    print(f"barge-in reaction on the wire ({policy}; caller's speech onset -> last non-silent packet of the prompt):")
    print(f"  {percentiles(reactions)}")
    print(f"  speech gateway's decision (onset -> StopPlayback sent): mean {decided:.0f} ms over {count:.0f}")
    print(f"  holds released (a likely onset that never became speech): {released:.0f}")
    return 0 if reactions else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--budget-s", type=float, default=300.0)
    parser.add_argument("--no-hold", action="store_true", help="barge_in.hold_on_speech off")
    parser.add_argument("--hold-after-ms", type=int, default=None,
                        help="speech gateway barge_in.hold_after_ms (default: its config, 100; 0 = at speech start)")
    parser.add_argument("--backchannel-ms", type=int, default=None,
                        help="speech gateway barge_in.backchannel_max_ms (default: its config, 700; 0 = at onset)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())

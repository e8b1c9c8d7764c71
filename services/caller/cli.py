"""`dialtone call URI [--say TEXT | --wav FILE]... [--dtmf D] [--expect TEXT] [--interrupt] ...`

Steps run in the order given on the command line (or from ``--script FILE.yaml``). Exit status:
0 when every step ran and every --expect was heard, 1 when one was not, 2 for a bad script,
3 when the call was not answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from dialtone.caller.script import DEFAULT_INTERRUPT_AFTER_MS, Script, ScriptError, Step, make_step, parse_script

EXIT_OK, EXIT_EXPECT_FAILED, EXIT_BAD_SCRIPT, EXIT_NOT_ANSWERED = 0, 1, 2, 3


class _StepAction(argparse.Action):
    """Appends (kind, value) to one shared list, so that steps keep their command-line order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        steps = getattr(namespace, "steps", None) or []
        steps.append((self.dest.removeprefix("step_"), values))
        namespace.steps = steps


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "call", help="place a scripted test call (say, listen, DTMF, barge in) and print its timeline",
        description="Dial a SIP URI on the media gateway's SIP/RTP stack and run steps in order. Example: "
                    "dialtone call sip:order_status@127.0.0.1:5060 --say 'one two three four five' "
                    "--expect shipped --dtmf 0 --wait refer")
    parser.add_argument("uri", nargs="?", default="", help="sip:user@host[:port] (or 'call:' in --script)")
    for name, help_text in (("say", "speak TEXT (rendered by the TTS)"), ("wav", "play a mono 16-bit WAV FILE"),
                            ("dtmf", "press DIGITS (RFC 4733)"), ("expect", "fail unless the bot says TEXT next"),
                            ("silence", "stay quiet for S seconds"),
                            ("wait", "wait for 'speech', 'refer' or 'bye'")):
        parser.add_argument(f"--{name}", dest=f"step_{name}", action=_StepAction, metavar=name.upper(),
                            help=help_text)
    parser.add_argument("--interrupt", dest="step_interrupt", action=_StepAction, nargs=0,
                        help="the next --say/--wav/--dtmf goes over the bot's prompt instead of waiting for its end")
    parser.add_argument("--hangup", dest="step_hangup", action=_StepAction, nargs=0, help="hang up here")
    parser.add_argument("--interrupt-after-ms", type=int, default=DEFAULT_INTERRUPT_AFTER_MS,
                        help="with --interrupt: how long into the prompt to start talking")
    parser.add_argument("--script", help="a YAML script (see dialtone.caller.script.parse_script)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds for the whole call (default 60)")
    parser.add_argument("--step-timeout", type=float, default=20.0, help="seconds one step may wait")
    parser.add_argument("--bind", default="127.0.0.1", help="local address for SIP and RTP")
    parser.add_argument("--tts", default="piper", choices=("piper", "espeak", "flite"), help="TTS engine")
    parser.add_argument("--voice", default="", help="TTS voice (default: the packaged piper voice)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the report as JSON here")
    parser.set_defaults(func=_run, steps=None)


def build_steps(pairs: list[tuple[str, Any]], interrupt_after_ms: int) -> tuple[Step, ...]:
    """Command-line (kind, value) pairs -> steps; ``interrupt`` marks the next say/wav."""
    steps: list[Step] = []
    interrupt = False
    for position, (kind, value) in enumerate(pairs, 1):
        where = f"option {position} (--{kind})"
        if kind == "interrupt":
            interrupt = True
            continue
        if interrupt and kind not in ("say", "wav", "dtmf"):
            raise ScriptError(f"{where}: --interrupt must be followed by --say, --wav or --dtmf")
        steps.append(make_step(kind, "" if kind == "hangup" else value, interrupt=interrupt,
                               interrupt_after_ms=interrupt_after_ms, where=where))
        interrupt = False
    if interrupt:
        raise ScriptError("--interrupt must be followed by --say, --wav or --dtmf")
    return tuple(steps)


def _script_from_args(args: argparse.Namespace) -> Script:
    if args.script:
        if args.steps:
            raise ScriptError("give steps either with --script or on the command line, not both")
        try:
            text = Path(args.script).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"{args.script}: cannot read: {exc.strerror}") from None
        script = parse_script(text, args.script)
        uri = args.uri or script.uri
        return Script(uri, script.steps, args.timeout or script.timeout_s)
    if not args.steps:
        raise ScriptError("nothing to do: give steps (--say, --dtmf, --expect, ...) or --script")
    return Script(args.uri, build_steps(args.steps, args.interrupt_after_ms), args.timeout)


def _run(args: argparse.Namespace) -> int:
    from dialtone.common.logging import setup_logging
    from dialtone.media_gateway.calls import parse_sip_uri

    try:
        script = _script_from_args(args)
        if not script.uri:
            raise ScriptError("no SIP URI to call: give URI (sip:user@host[:port]) or 'call:' in the script")
        parse_sip_uri(script.uri)
    except (ScriptError, ValueError) as exc:
        print(f"dialtone call: {exc}", file=sys.stderr)
        return EXIT_BAD_SCRIPT
    setup_logging("caller", "WARNING", "text")
    try:
        report = asyncio.run(_call(script, args))
    except (ValueError, ScriptError) as exc:   # e.g. an unreadable WAV
        print(f"dialtone call: {exc}", file=sys.stderr)
        return EXIT_BAD_SCRIPT
    from dialtone.caller.runner import format_report

    print(format_report(report), flush=True)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if not report["connected"]:
        return EXIT_NOT_ANSWERED
    return EXIT_OK if report["ok"] else EXIT_EXPECT_FAILED


async def _call(script: Script, args: argparse.Namespace) -> dict[str, Any]:
    from dialtone.caller.phone import Phone
    from dialtone.caller.runner import ScriptRunner
    from dialtone.caller.voices import Voices

    voices = await Voices.load(args.tts, args.voice)
    phone = Phone(args.bind)
    await phone.start()
    try:
        runner = ScriptRunner(phone, voices, script.uri, script.steps, timeout_s=script.timeout_s or 60.0,
                              step_timeout_s=args.step_timeout)
        return await runner.run()
    finally:
        await phone.stop()
        voices.close()

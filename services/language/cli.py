"""`dialtone understand`: check what the extractors and the intent matcher make of a phrasing.

    dialtone understand date "next tuesday at three pm" --now 2026-12-03T10:00 --tz America/New_York
    "2026-12-08"
    dialtone understand digits "oh four double five" --min-length 4
    "0455"
    dialtone understand choice "the large one" --options small,medium,large
    "large"
    dialtone understand intent --intents intents.yaml "can i talk to a person"
    {"intent": "agent", "confidence": 0.81}

Exit status: 0 on a match (the value, as JSON, on stdout), 1 on no match, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from dialtone.language.intents import IntentMatcher
from dialtone.language.registry import ENTITY_TYPES, extract, to_json, validate_constraints, validate_time_zone

EXIT_MATCH, EXIT_NO_MATCH, EXIT_BAD_INPUT = 0, 1, 2
INTENT = "intent"


class UsageError(Exception):
    pass


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "understand", help="extract an entity or match an intent in a phrase (prints JSON; exit 1 on no match)",
        description="Print what the extractor of entity TYPE makes of TEXT, or (TYPE 'intent') which intent "
                    f"TEXT matches. Types: {', '.join(ENTITY_TYPES)}, {INTENT}.")
    parser.add_argument("type", metavar="TYPE", help=f"an entity type or '{INTENT}'")
    parser.add_argument("text", metavar="TEXT", help="what the caller said ('' with --dtmf)")
    parser.add_argument("--dtmf", default="", help="keys pressed instead (yes_no, digits, choice, phone_number)")
    parser.add_argument("--now", help="the clock for dates and times, ISO 8601 (default: now)")
    parser.add_argument("--tz", default="UTC", help="IANA time zone of the dialog (default UTC)")
    parser.add_argument("--options", help="choice: the options, comma-separated")
    parser.add_argument("--min-length", type=int, help="digits, alphanumeric: fewest characters")
    parser.add_argument("--max-length", type=int, help="digits, alphanumeric: most characters")
    parser.add_argument("--constraint", action="append", default=[], metavar="NAME=VALUE",
                        help="any other constraint of the type (VALUE read as YAML), e.g. prefer=past, currency=EUR")
    parser.add_argument("--intents", metavar="FILE",
                        help="intent: a YAML file of intents (name: {examples: [...], keywords: [...]})")
    parser.add_argument("--among", help="intent: only these intents, comma-separated (what a state listens for)")
    parser.add_argument("--dialog", metavar="FILE", help="intent: a dialog file; its intents as --state hears them")
    parser.add_argument("--state", help="intent, with --dialog: the state whose intents (and the handlers') compete")
    parser.add_argument("--threshold", type=float, help="intent: confidence below which it is no_match")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.type == INTENT:
            return _match_intent(args)
        return _extract(args)
    except UsageError as error:
        print(f"dialtone understand: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _extract(args: argparse.Namespace) -> int:
    if args.type not in ENTITY_TYPES:
        raise UsageError(f"unknown type {args.type!r}; known: {', '.join(ENTITY_TYPES)}, {INTENT}")
    constraints = _constraints(args)
    problems = validate_constraints(args.type, constraints)
    zone_problem = validate_time_zone(args.tz)
    if zone_problem:
        problems.append(zone_problem)
    if problems:
        raise UsageError("; ".join(problems))
    now = _now(args.now) if ENTITY_TYPES[args.type].takes_clock else None
    value = extract(args.type, args.text, dtmf=args.dtmf, constraints=constraints, now=now, tz=args.tz)
    if value is None:
        print("null")
        return EXIT_NO_MATCH
    print(json.dumps(to_json(value)))
    return EXIT_MATCH


def _constraints(args: argparse.Namespace) -> dict[str, Any]:
    constraints: dict[str, Any] = {}
    if args.options is not None:
        constraints["options"] = [option.strip() for option in args.options.split(",") if option.strip()]
    if args.min_length is not None:
        constraints["min_length"] = args.min_length
    if args.max_length is not None:
        constraints["max_length"] = args.max_length
    for item in args.constraint:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--constraint wants NAME=VALUE, got {item[:40]!r}")
        constraints[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    return constraints


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now().astimezone()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now wants ISO 8601 such as 2026-12-03T10:00, got {text[:40]!r}") from None


def _match_intent(args: argparse.Namespace) -> int:
    matcher, among = _intent_source(args)
    result = matcher.match(args.text, among)
    print(json.dumps({"intent": result.intent, "confidence": result.confidence}))
    return EXIT_MATCH if result.matched else EXIT_NO_MATCH


def _intent_source(args: argparse.Namespace) -> tuple[IntentMatcher, list[str] | None]:
    """The matcher and the intents listened for: from --intents FILE (and --among), or from a dialog
    and one of its states, exactly as the runtime matches them there."""
    if args.dialog:
        return _dialog_intents(args)
    if not args.intents:
        raise UsageError("intent: give --intents FILE, or --dialog FILE --state NAME")
    declared = _load_intents(Path(args.intents))
    kwargs = {} if args.threshold is None else {"threshold": args.threshold}
    try:
        matcher = IntentMatcher(declared, **kwargs)
    except ValueError as error:
        raise UsageError(f"{args.intents}: {error}") from None
    among = [name.strip() for name in args.among.split(",") if name.strip()] if args.among else None
    unknown = [name for name in among or () if name not in matcher.intents]
    if unknown:
        raise UsageError(f"--among: unknown intent(s) {', '.join(unknown)}; declared: {', '.join(matcher.names)}")
    return matcher, among


def _dialog_intents(args: argparse.Namespace) -> tuple[IntentMatcher, list[str] | None]:
    # imported here: the library knows no service; only this operator's tool reads a dialog file
    from dialtone.conversation_runtime.core.errors import DialogLoadError
    from dialtone.conversation_runtime.core.loader import load_dialog

    try:
        dialog = load_dialog(args.dialog)
    except DialogLoadError as error:
        raise UsageError(str(error)) from None
    if dialog.matcher is None:
        raise UsageError(f"{args.dialog}: the dialog declares no intents")
    if not args.state:
        return dialog.matcher, None
    state = dialog.states.get(args.state)
    if state is None:
        raise UsageError(f"--state: no state {args.state!r} in {dialog.name}; states: {', '.join(dialog.states)}")
    listened = list(dialog.listened_intents(state))
    if not listened:
        raise UsageError(f"state {args.state!r} listens for no intent (no 'intent' transition there or in handlers)")
    matcher = dialog.matcher
    if args.threshold is not None:
        matcher = IntentMatcher(dialog.intents, threshold=args.threshold)
    return matcher, listened


def _load_intents(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    # A file of intents alone, or one with an `intents:` section (like a dialog or the labelled set).
    if isinstance(loaded, dict) and isinstance(loaded.get("intents"), dict):
        loaded = loaded["intents"]
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: expected a mapping of intent name to {{examples: [...], keywords: [...]}}")
    return loaded

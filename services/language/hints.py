"""Recognition hints: what a listening state expects, as words for the ASR.

The runtime sends, with a listening state's prompt, what it expects; the speech gateway passes
``phrases`` to an engine that takes hotwords and ``prompt`` to one that takes an initial prompt
(whisper). Both are short: a long initial prompt costs decoding time and can be echoed back.

Digits, numbers and phone numbers add nothing: the extractors read figures and number words
alike, and a prompt full of digits is what could change how whisper writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialtone.language.intents import Intent, as_intent

ENTITY_VOCABULARY: Mapping[str, tuple[str, ...]] = {
    "yes_no": ("yes", "no", "that's right"),
    "digits": (),
    "number": (),
    "phone_number": (),
    "ordinal": ("first", "second", "third", "last"),
    "choice": (),            # the options themselves
    "date": ("today", "tomorrow", "next", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "time": ("a.m.", "p.m.", "half past", "quarter to", "noon"),
    "datetime": ("today", "tomorrow", "next", "a.m.", "p.m."),
    "amount": ("dollars", "cents"),
    "alphanumeric": ("as in",),
}

MAX_PHRASES = 40
MAX_PROMPT_CHARS = 200


@dataclass(frozen=True)
class Hints:
    phrases: tuple[str, ...]
    prompt: str


def hints_for(*, entities: Iterable[str] = (),
              intents: Mapping[str, Intent | Mapping[str, Any] | Sequence[str]] | None = None,
              options: Sequence[str] | Mapping[str, Sequence[str]] = (),
              max_phrases: int = MAX_PHRASES, max_prompt_chars: int = MAX_PROMPT_CHARS) -> Hints:
    """Hint phrases from the expected entity types, the intents listened for (their first examples
    and keywords) and a choice's options (names and synonyms); first ones first, no repeats."""
    phrases: list[str] = []
    seen: set[str] = set()

    def add(phrase: str) -> None:
        key = phrase.strip().lower()
        if key and key not in seen and len(phrases) < max_phrases:
            seen.add(key)
            phrases.append(phrase.strip())

    for name, synonyms in (options.items() if isinstance(options, Mapping) else ((o, ()) for o in options)):
        add(name)
        for synonym in synonyms or ():
            add(synonym)
    declared = {name: as_intent(spec) for name, spec in (intents or {}).items()}
    for intent in declared.values():        # each intent's best phrase before any intent's second
        if intent.examples:
            add(intent.examples[0].rstrip("?.!"))
    for intent in declared.values():
        for keyword in intent.keywords:
            add(keyword)
    for entity in entities:
        for word in ENTITY_VOCABULARY.get(entity, ()):
            add(word)
    prompt = ""
    for phrase in phrases:
        candidate = f"{prompt}, {phrase}" if prompt else phrase
        if len(candidate) + 1 > max_prompt_chars:
            break
        prompt = candidate
    return Hints(tuple(phrases), f"{prompt}." if prompt else "")

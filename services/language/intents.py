"""Intent matching: which of a dialog's intents an utterance expresses, with a confidence.

    matcher = IntentMatcher({"agent": Intent(("talk to a person", "representative"), ("agent",)), ...})
    matcher.match("can i talk to a real person please")            -> IntentMatch("agent", 0.81)
    matcher.match("what's the weather like", among=("agent",))     -> IntentMatch(None, 0.12)  # no_match

The score of an intent is a blend of two measures, chosen by accuracy on a labelled set
(services/language/data/telephony_intents.yaml; figures in docs/understanding.md):

- fuzzy: rapidfuzz's token_set_ratio against the intent's closest example (word order and extra
  words do not matter; a misheard word costs a little, not everything);
- words: the share of the utterance's content words (IDF-weighted across the dialog's intents)
  that the intent's examples and keywords use. It is what separates "cancel my order" from "where
  is my order", which fuzzy matching alone confuses.

Words are lower-cased, contractions restored, and stemmed (Snowball), so "refills" meets "refill".
All of it is computed once per matcher; a match costs tens of microseconds. No model, nothing to
download, and the same input always gives the same answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import snowballstemmer
from dialtone.language.text import clean
from rapidfuzz import fuzz

DEFAULT_THRESHOLD = 0.45
FUZZY_WEIGHT = 0.4          # the rest is the word measure; see the module docstring
UNKNOWN_WORD_WEIGHT = 1.0   # of the largest IDF: a word no intent uses dilutes the word measure
# Words that carry no intent; they still count for the fuzzy measure, which sees the whole phrase.
STOP_WORDS = frozenset(
    "i me my a an the to of for on in at is are am be was it this that please can could would will you your do "
    "does did i'm i'd want like need just um uh so and or with about some any we our us have has get".split())

_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def _analyse(text: str) -> tuple[list[str], set[str]]:
    """The stems of all words (for the fuzzy measure) and of the content words (for the other)."""
    words = clean(text).split()
    return [_stem(word) for word in words], {_stem(word) for word in words if word not in STOP_WORDS}


@dataclass(frozen=True)
class Intent:
    examples: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class IntentMatch:
    intent: str | None          # None: no_match
    confidence: float
    scores: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    @property
    def matched(self) -> bool:
        return self.intent is not None


def as_intent(spec: Intent | Mapping[str, object] | Sequence[str]) -> Intent:
    """An intent from a dialog's declaration: ``{examples: [...], keywords: [...]}`` or a list of
    examples."""
    if isinstance(spec, Intent):
        return spec
    if isinstance(spec, Mapping):
        return Intent(tuple(str(e) for e in spec.get("examples") or ()),  # type: ignore[union-attr]
                      tuple(str(k) for k in spec.get("keywords") or ()))  # type: ignore[union-attr]
    return Intent(tuple(str(e) for e in spec))


def validate_intents(intents: Mapping[str, object]) -> list[str]:
    """Problems with a dialog's intent declarations, one clear sentence each (empty: none)."""
    problems = []
    if not intents:
        problems.append("no intents are declared")
    for name, spec in intents.items():
        if not isinstance(spec, Intent | Mapping | list | tuple):
            problems.append(f"intent {name!r}: expected a mapping with 'examples' (and 'keywords'), "
                            f"got {type(spec).__name__}")
            continue
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"examples", "keywords"})
            if unknown:
                problems.append(f"intent {name!r}: unknown field(s) {', '.join(map(repr, unknown))}; "
                                "expected 'examples' and 'keywords'")
        intent = as_intent(spec)  # type: ignore[arg-type]
        if not intent.examples:
            problems.append(f"intent {name!r} has no examples: give at least one phrase a caller would say")
        elif not all(clean(example) for example in intent.examples):
            problems.append(f"intent {name!r} has an empty example")
    return problems


class IntentMatcher:
    """Matches utterances against a fixed set of intents. Build once (per dialog), match often."""

    def __init__(self, intents: Mapping[str, Intent | Mapping[str, object] | Sequence[str]], *,
                 threshold: float = DEFAULT_THRESHOLD) -> None:
        problems = validate_intents(intents)
        if problems:
            raise ValueError("; ".join(problems))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.threshold = threshold
        self.intents = {name: as_intent(spec) for name, spec in intents.items()}
        self._names = tuple(self.intents)
        self._examples: list[str] = []
        self._example_owner: list[int] = []
        self._vocabulary: list[frozenset[str]] = []
        for index, intent in enumerate(self.intents.values()):
            words: set[str] = set()
            for example in intent.examples:
                stems, content = _analyse(example)
                self._examples.append(" ".join(stems))
                self._example_owner.append(index)
                words |= content
            for keyword in intent.keywords:
                words |= set(_analyse(keyword)[0])
            self._vocabulary.append(frozenset(words))
        frequency = Counter(word for words in self._vocabulary for word in words)
        count = len(self._names)
        self._idf = {word: math.log(1 + count / seen) for word, seen in frequency.items()}
        self._unknown_weight = math.log(1 + count) * UNKNOWN_WORD_WEIGHT

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def scores(self, text: str, among: Iterable[str] | None = None) -> dict[str, float]:
        """Every (listened-for) intent's score in [0, 1]."""
        allowed = self._allowed(among)
        stems, content = _analyse(text)
        if not stems:
            return dict.fromkeys((self._names[i] for i in allowed), 0.0)
        fuzzy = [0.0] * len(self._names)
        joined = " ".join(stems)
        # A plain loop: process.cdist would be no faster at this size and imports numpy on first use.
        for owner, example in zip(self._example_owner, self._examples, strict=True):
            score = fuzz.token_set_ratio(joined, example)
            if score > fuzzy[owner]:
                fuzzy[owner] = score
        weights = {word: self._idf.get(word, self._unknown_weight) for word in content}
        total = sum(weights.values())
        result = {}
        for index in allowed:
            covered = sum(w for word, w in weights.items() if word in self._vocabulary[index])
            word_share = covered / total if total else 0.0
            result[self._names[index]] = FUZZY_WEIGHT * fuzzy[index] / 100 + (1 - FUZZY_WEIGHT) * word_share
        return result

    def match(self, text: str, among: Iterable[str] | None = None) -> IntentMatch:
        """The best intent, or no_match (``intent`` None) when its score is under the threshold.
        ``among``: the intents the current state listens for (default all)."""
        scores = self.scores(text, among)
        if not scores:
            return IntentMatch(None, 0.0, scores)
        # Ties go to the intent declared first, so the answer never depends on dict order elsewhere.
        best = max(scores, key=lambda name: (scores[name], -self._names.index(name)))
        confidence = round(scores[best], 3)
        return IntentMatch(best if confidence >= self.threshold else None, confidence, scores)

    def _allowed(self, among: Iterable[str] | None) -> list[int]:
        if among is None:
            return list(range(len(self._names)))
        indices = []
        for name in among:
            if name not in self.intents:
                raise ValueError(f"unknown intent {name!r}; declared: {', '.join(self._names)}")
            indices.append(self._names.index(name))
        return indices

"""Entity extractors: a transcript (and, where natural, DTMF digits) -> a typed value, or None.

Each is a pure, deterministic function; none does I/O. Dates and times are in ``when``; the
registry (``registry``) maps entity type names to these functions and their constraints.

    yes_no        "yeah that's right" -> True, "not really" -> False, DTMF 1/2
    digits        "oh four double five 7" -> "04557" (leading zeros kept), DTMF "04557#"
    number        "two hundred and five" -> 205, "3.5" -> 3.5
    ordinal       "the third" -> 3
    choice        "the large one please" -> "large", "the second one" -> options[1]
    amount        "twelve dollars and fifty cents" -> Amount(Decimal("12.50"), "USD")
    phone_number  "six five oh two five three oh oh oh oh" -> "+16502530000"
    alphanumeric  "b as in boy seven alpha" -> "B7A"
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import phonenumbers
from dialtone.language.text import clean, normalize, words
from price_parser import Price
from rapidfuzz import fuzz


def _alternation(phrases: Sequence[str]) -> str:
    return "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))


# --- yes_no ---------------------------------------------------------------------------------------

_YES = (
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "yes please", "sure", "sure thing", "correct", "right",
    "that's right", "that is right", "that's correct", "that is correct", "exactly", "absolutely", "definitely",
    "of course", "affirmative", "ok", "all right", "go ahead", "please do", "uh huh", "mhm", "mm hmm",
    "sounds good", "that's it", "that's the one", "indeed", "certainly", "you got it", "you bet", "perfect",
    "it is", "i do", "i did", "true", "confirm", "confirmed", "fine", "that works", "works for me", "please",
    "no problem", "no worries", "why not", "i think so", "i believe so", "yes it is", "correctamundo", "bingo",
    "right on", "totally", "agreed", "positive", "aye",
)
_NO = (
    "no", "nope", "nah", "no thanks", "no thank you", "not really", "negative", "incorrect", "wrong",
    "that's wrong", "that's not right", "that is not right", "not right", "not correct", "that's not correct",
    "isn't right", "isn't correct", "i don't", "i do not", "don't", "do not", "not at all", "never", "no way",
    "uh uh", "nuh uh", "false", "it isn't", "it is not", "not quite", "that's not it", "not that one",
    "absolutely not", "definitely not", "of course not", "i don't think so", "no it isn't", "not exactly",
    "wrong one", "not yet", "not now", "that's incorrect", "no sir", "no ma'am", "please don't",
)
_UNSURE = ("not sure", "i'm not sure", "maybe", "i don't know", "don't know", "perhaps", "not certain",
           "no idea", "who knows", "possibly")
_POLARITY = {**{p: True for p in _YES}, **{p: False for p in _NO}, **{p: None for p in _UNSURE}}
_YES_NO = re.compile(r"(?<!\S)(" + _alternation(list(_POLARITY)) + r")(?!\S)")


def extract_yes_no(text: str, *, dtmf: str = "", dtmf_yes: str = "1", dtmf_no: str = "2") -> bool | None:
    """True for yes, False for no, None when neither (or when the caller is unsure). When the
    caller changes their mind ("no wait yes", "yeah no"), the last answer counts."""
    if dtmf:
        key = dtmf.rstrip("#")
        return True if key == dtmf_yes else False if key == dtmf_no else None
    answers = [_POLARITY[m.group(1)] for m in _YES_NO.finditer(clean(text))]
    return answers[-1] if answers else None


# --- digits ---------------------------------------------------------------------------------------

_REPEAT = {"double": 2, "triple": 3, "treble": 3}
_ZERO_WORDS = frozenset({"oh", "o", "zero", "nought", "naught"})
# Inside a run of digits these do not end it: "five five five dash one two".
_DIGIT_FILLERS = frozenset({"dash", "hyphen", "uh", "um", "er", "erm", "hmm", "and", "then", "space"})
_FIGURES = re.compile(r"\d+")
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)"
# "one eight hundred five five five ..." is 1-800-555: "eight hundred" followed by more spoken
# digits is a toll-free prefix, not 805 ("two hundred five" alone stays 205).
_HUNDRED_PREFIX = re.compile(
    rf"\b(one|two|three|four|five|six|seven|eight|nine) hundred (?=(?:{_DIGIT_WORD} )+{_DIGIT_WORD}\b)")


def digit_runs(text: str) -> list[str]:
    """Every run of spoken or written digits in ``text``, in order, as digit strings."""
    runs: list[str] = []
    current: list[str] = []
    only_oh = True      # a run that is a lone "oh" is an interjection ("oh, it's 1234"), not a zero
    repeat = 1

    def close() -> None:
        if current and not (only_oh and len(current) == 1):
            runs.append("".join(current))
        current.clear()

    for word in words(normalize(_HUNDRED_PREFIX.sub(r"\1 zero zero ", text.lower()))):
        if word in _REPEAT:
            repeat = _REPEAT[word]
            continue
        if _FIGURES.fullmatch(word):
            chunk = word
        elif word in _ZERO_WORDS:
            chunk = "0"
        elif current and word in _DIGIT_FILLERS:
            repeat = 1
            continue
        else:
            close()
            only_oh, repeat = True, 1
            continue
        if word not in ("oh", "o"):
            only_oh = False
        # "double 55" is not telephone speech: repeat only a single spoken digit.
        current.append(chunk[0] * repeat + chunk[1:] if repeat > 1 else chunk)
        repeat = 1
    close()
    return runs


def extract_digits(text: str, *, dtmf: str = "", min_length: int = 1, max_length: int | None = None) -> str | None:
    """The digit string the caller said or keyed, leading zeros kept. Several runs: the longest one
    whose length fits (the last of equals)."""
    def fits(run: str) -> bool:
        return len(run) >= min_length and (max_length is None or len(run) <= max_length)

    if dtmf:
        keyed = dtmf.rstrip("#")
        return keyed if keyed.isdigit() and fits(keyed) else None
    runs = [run for run in digit_runs(text) if fits(run)]
    if not runs:
        return None
    return max(reversed(runs), key=len)


# --- number and ordinal ---------------------------------------------------------------------------

# At most 15 significant figures: what a float holds exactly, and far more than a caller says.
_NUMBER = re.compile(r"(?<!\S)(?:(minus|negative) )?[$€£]?(\d{1,15}(?:\.\d{1,6})?)(?!\S)")
_NUMBER_WORDS = re.compile(r"(?<!\S)(?:(half a dozen)|(a dozen)|(a couple(?: of)?)|(none|nothing))(?!\S)")
_NUMBER_WORD_VALUES = (6, 12, 2, 0)
_ORDINAL = re.compile(r"(?<!\S)(\d{1,6})(?:st|nd|rd|th)(?!\S)")


def extract_number(text: str, *, min: float | None = None, max: float | None = None) -> int | float | None:  # noqa: A002
    """The first number in the utterance: an int, or a float when it has a fraction."""
    normalized = normalize(text)
    found = _NUMBER.search(normalized)
    value: int | float
    if found:
        figure = found.group(2)
        value = float(figure) if "." in figure else int(figure)
        if found.group(1):
            value = -value
    else:
        named = _NUMBER_WORDS.search(normalized)
        if not named:
            return None
        value = next(v for v, g in zip(_NUMBER_WORD_VALUES, named.groups(), strict=True) if g)
    if (min is not None and value < min) or (max is not None and value > max):
        return None
    return value


def extract_ordinal(text: str, *, max: int | None = None) -> int | None:  # noqa: A002
    """The first ordinal ("third", "21st") as an int."""
    found = _ORDINAL.search(normalize(text))
    if not found:
        return None
    value = int(found.group(1))
    return value if value >= 1 and (max is None or value <= max) else None


# --- choice ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChoiceOptions:
    """Options compiled once: each option's name and synonyms, normalized, longest phrase first."""

    names: tuple[str, ...]
    phrases: tuple[tuple[str, int], ...]      # (normalized phrase, option index), longest first
    index_of: Mapping[str, int]
    pattern: re.Pattern[str]


def compile_options(options: Sequence[str] | Mapping[str, Sequence[str]] | ChoiceOptions) -> ChoiceOptions:
    """Options as a list of names, or a mapping name -> synonyms."""
    if isinstance(options, ChoiceOptions):
        return options
    if isinstance(options, Mapping):
        key = tuple((str(name), tuple(str(s) for s in (synonyms or ()))) for name, synonyms in options.items())
    else:
        key = tuple((str(name), ()) for name in options)
    return _compile_options(key)


@lru_cache(maxsize=256)
def _compile_options(key: tuple[tuple[str, tuple[str, ...]], ...]) -> ChoiceOptions:
    phrases: dict[str, int] = {}
    for index, (name, synonyms) in enumerate(key):
        for phrase in (name, *synonyms):
            normalized = normalize(phrase)
            if normalized:
                phrases.setdefault(normalized, index)
    ordered = tuple(sorted(phrases.items(), key=lambda item: len(item[0]), reverse=True))
    pattern = re.compile(r"(?<!\S)(" + _alternation([p for p, _ in ordered]) + r")(?!\S)") if ordered \
        else re.compile(r"(?!)")
    return ChoiceOptions(tuple(name for name, _ in key), ordered, phrases, pattern)


_POSITION = re.compile(r"(?<!\S)(?:(?:the )?(\d+)(?:st|nd|rd|th)|(?:number|option|choice|press(?:ed)?) (\d+))(?!\S)")
_LAST = re.compile(r"(?<!\S)(?:the )?(?:last|final)(?: one| option)?(?!\S)")
_BARE_NUMBER = re.compile(r"(?:(?:um|uh|er) )?(\d+)(?: please)?")


def extract_choice(text: str, *, options: Sequence[str] | Mapping[str, Sequence[str]] | ChoiceOptions,
                   dtmf: str = "", threshold: float = 85.0) -> str | None:
    """The option the caller named (by name or synonym, the last one named when several are),
    by position ("the second one", "number two", "the last one", DTMF 2), or by a fuzzy match of
    its words at ``threshold`` (0-100) or better."""
    compiled = compile_options(options)
    if dtmf:
        return _option_at(compiled, dtmf.rstrip("#"))
    normalized = normalize(text)
    named = list(compiled.pattern.finditer(normalized))
    if named:
        return compiled.names[compiled.index_of[named[-1].group(1)]]
    if _LAST.search(normalized):
        return compiled.names[-1]
    position = _POSITION.search(normalized)
    if position:
        return _option_at(compiled, position.group(1) or position.group(2))
    bare = _BARE_NUMBER.fullmatch(normalized)
    if bare:
        return _option_at(compiled, bare.group(1))
    return _fuzzy_choice(words(normalized), compiled, threshold)


def _option_at(compiled: ChoiceOptions, position: str) -> str | None:
    """Option by its 1-based position."""
    if not position.isdigit() or not 1 <= int(position) <= len(compiled.names):
        return None
    return compiled.names[int(position) - 1]


def _fuzzy_choice(utterance: list[str], compiled: ChoiceOptions, threshold: float) -> str | None:
    best_score, best_index = 0.0, -1
    for phrase, index in compiled.phrases:
        size = phrase.count(" ") + 1
        if len(phrase) < 4:     # "xl" fuzzily matches too much
            continue
        for start in range(max(1, len(utterance) - size + 1)):
            score = fuzz.ratio(phrase, " ".join(utterance[start:start + size]), score_cutoff=threshold)
            if score > best_score:
                best_score, best_index = score, index
    return compiled.names[best_index] if best_index >= 0 else None


# --- amount ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str     # ISO 4217

    def to_json(self) -> dict[str, str]:
        return {"value": str(self.value), "currency": self.currency}


_DOLLAR_CURRENCIES = frozenset({"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN"})
_CURRENCY_WORDS = {
    "dollar": "$", "dollars": "$", "buck": "$", "bucks": "$", "usd": "USD", "$": "$",
    "euro": "EUR", "euros": "EUR", "eur": "EUR", "€": "EUR",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "gbp": "GBP", "£": "GBP",
    "cad": "CAD", "aud": "AUD",
}
_CENTS = r"cents?|pence|p"
_CURRENCY = _alternation([w for w in _CURRENCY_WORDS if w not in ("$", "€", "£")])
_AMOUNT = re.compile(
    r"(?<!\S)(?:([$€£]) ?(\d{1,12}(?:\.\d{1,2})?)"                                    # $12.50
    rf"|(\d{{1,12}}(?:\.\d{{1,2}})?) ?({_CURRENCY})"                                   # 12 dollars
    rf"(?: and)?(?: (\d{{1,2}})(?: (?:{_CENTS}))?(?!\S)(?! \d))?"                      # (and) 50 (cents)
    rf"|(\d{{1,2}}) ({_CENTS}))(?!\S)")                                              # 50 cents
_MAX_AMOUNT = Decimal(10) ** 12
_CURRENCY_MARK = re.compile(r"[$€£¥]|\b[A-Z]{3}\b")
_PRICE_MAX_CHARS = 80
_BARE_AMOUNT = re.compile(r"(?<!\S)(\d{1,12})(?: (\d{2}))?(?:\.(\d{1,2}))?(?!\S)")


def extract_amount(text: str, *, currency: str = "USD", min: float | None = None,  # noqa: A002
                   max: float | None = None) -> Amount | None:
    """A sum of money. A bare figure is in ``currency``; "twelve fifty" is 12.50; "$" and "dollars"
    mean ``currency`` when it is a dollar currency, else USD."""
    normalized = normalize(text)
    found = _AMOUNT.search(normalized)
    if found:
        symbol, figure, units, unit_word, cents, cents_only, _ = found.groups()
        if symbol:
            code, value = _CURRENCY_WORDS[symbol], Decimal(figure)
        elif units:
            code = _CURRENCY_WORDS[unit_word]
            value = Decimal(units) + (Decimal(cents) / 100 if cents else 0)
        else:
            code, value = "$", Decimal(cents_only) / 100
    else:
        # "€1.234,56", "EUR 15": separators and codes in figures (its cost grows with the text).
        priced = Price.fromstring(text[:_PRICE_MAX_CHARS]) if _CURRENCY_MARK.search(text) else None
        if priced is not None and priced.amount is not None and priced.currency:
            code, value = _CURRENCY_WORDS.get(priced.currency.lower(), priced.currency.upper()), priced.amount
        else:
            bare = _BARE_AMOUNT.search(normalized)
            if not bare:
                return None
            whole, spoken_cents, figure_cents = bare.groups()
            try:
                value = Decimal(whole) + Decimal(spoken_cents or figure_cents or 0) / (
                    100 if spoken_cents or (figure_cents and len(figure_cents) == 2) else 10)
            except InvalidOperation:
                return None
            code = currency
    if code == "$":
        code = currency if currency in _DOLLAR_CURRENCIES else "USD"
    if not value.is_finite() or abs(value) >= _MAX_AMOUNT:
        return None
    value = value.quantize(Decimal("0.01")) if value != value.to_integral_value() else value.quantize(Decimal(1))
    if (min is not None and value < Decimal(str(min))) or (max is not None and value > Decimal(str(max))):
        return None
    return Amount(value, code)


# --- phone_number ---------------------------------------------------------------------------------

_E164_MAX_DIGITS = 15
_PLUS = re.compile(r"(?<!\S)(?:\+|plus)")


def extract_phone_number(text: str, *, dtmf: str = "", region: str = "US") -> str | None:
    """A valid phone number in E.164 ("+16502530000"); national numbers are read in ``region``."""
    if dtmf:
        spoken = dtmf.rstrip("#")
    else:
        runs = [run for run in digit_runs(text) if len(run) <= _E164_MAX_DIGITS]
        if not runs:
            return None
        spoken = max(reversed(runs), key=len)
        if _PLUS.search(clean(text)):
            spoken = "+" + spoken
    try:
        number = phonenumbers.parse(spoken, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- alphanumeric ---------------------------------------------------------------------------------

_NATO = {
    "alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E", "foxtrot": "F",
    "golf": "G", "hotel": "H", "india": "I", "juliet": "J", "juliett": "J", "kilo": "K", "lima": "L",
    "mike": "M", "november": "N", "oscar": "O", "papa": "P", "quebec": "Q", "romeo": "R", "sierra": "S",
    "tango": "T", "uniform": "U", "victor": "V", "whiskey": "W", "whisky": "W", "x ray": "X", "xray": "X",
    "yankee": "Y", "zulu": "Z",
}
# How an ASR writes a letter said alone. "oh" is read as zero: callers say it for 0 far more often.
_LETTER_SOUNDS = {
    "bee": "B", "be": "B", "see": "C", "sea": "C", "cee": "C", "dee": "D", "gee": "G", "jay": "J", "kay": "K",
    "el": "L", "ell": "L", "em": "M", "en": "N", "pee": "P", "cue": "Q", "queue": "Q", "are": "R", "ar": "R",
    "ess": "S", "tee": "T", "tea": "T", "you": "U", "vee": "V", "double u": "W", "double you": "W", "ex": "X",
    "why": "Y", "zed": "Z", "zee": "Z", "aitch": "H", "eff": "F", "ef": "F",
}
_AS_IN = re.compile(r"(?<!\S)([a-z]) (?:as in|for|like) ([a-z]+)(?!\S)")
_SPOKEN_LETTERS = {**_NATO, **_LETTER_SOUNDS}
_SPELLING_PHRASE = re.compile(r"(?<!\S)(" + _alternation(list(_SPOKEN_LETTERS)) + r")(?!\S)")
_ALNUM_WORD = re.compile(r"[a-z0-9]*\d[a-z0-9]*|[a-z]")


def extract_alphanumeric(text: str, *, min_length: int = 1, max_length: int | None = None) -> str | None:
    """Spelled letters and digits, upper case: "b as in boy 7 alpha" -> "B7A". The longest run of
    spelled characters counts (the last of equals), so "my code is a b 1 2" -> "AB12"."""
    lowered = clean(text.replace("-", " "))
    lowered = _SPELLING_PHRASE.sub(lambda m: _SPOKEN_LETTERS[m.group(1)].lower(), lowered)
    lowered = _AS_IN.sub(lambda m: m.group(1) if m.group(2).startswith(m.group(1)) else m.group(0), lowered)
    runs: list[str] = []
    current: list[str] = []
    repeat = 1
    for word in words(normalize(lowered)):
        if word in _REPEAT:
            repeat = _REPEAT[word]
            continue
        if word in _ZERO_WORDS - {"o"}:
            word = "0"
        if _ALNUM_WORD.fullmatch(word):
            current.append(word[0] * repeat + word[1:])
        elif current:
            runs.append("".join(current))
            current = []
        repeat = 1
    if current:
        runs.append("".join(current))
    fitting = [run.upper() for run in runs
               if len(run) >= min_length and (max_length is None or len(run) <= max_length)]
    return max(reversed(fitting), key=len) if fitting else None

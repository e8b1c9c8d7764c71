"""The WER normaliser of the speech research note: lowercase, no punctuation, numerals
as words (4+ digits read digit by digit, as callers say order numbers), ``*``/``#`` as
star/pound, and a few spelling equivalences (you're = you are, voice mail = voicemail).
Used by the acceptance tests and the bench so both score the same way."""

from __future__ import annotations

import re

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_EQUIVALENT = {
    "you're": "you are", "we're": "we are", "they're": "they are", "i'm": "i am", "it's": "it is",
    "that's": "that is", "there's": "there is", "can't": "cannot", "can not": "cannot", "don't": "do not",
    "won't": "will not", "you'll": "you will", "we'll": "we will", "i'll": "i will", "let's": "let us",
    "voice mail": "voicemail", "e-mail": "email", "log in": "login", "logged in": "logged in",
    "ok": "okay", "mm-hmm": "mmhmm", "uh-huh": "uhhuh", "3d": "three d", "x": "x",
}
_DIGIT_WORDS = {w: str(i) for i, w in enumerate(_ONES[:10])} | {"oh": "0"}


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    hundreds, rest = divmod(n, 100)
    return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


def _numeral(match: re.Match[str]) -> str:
    digits = match.group(0).replace(",", "")
    if len(digits) >= 4 or digits.startswith("0") and len(digits) > 1:
        return " ".join(_ONES[int(d)] for d in digits)
    return " " + number_words(int(digits)) + " "


def normalize(text: str) -> str:
    text = text.lower().replace("*", " star ").replace("#", " pound ")
    text = re.sub(r"(\d)\.(\d)", r"\1 point \2", text)
    text = re.sub(r"\d[\d,]*\d|\d", _numeral, text)
    text = re.sub(r"[^a-z0-9'\- ]+", " ", text)
    text = re.sub(r"(?<![a-z])-|-(?![a-z])", " ", text)
    words = " ".join(text.split())
    for src, dst in _EQUIVALENT.items():
        words = re.sub(rf"\b{re.escape(src)}\b", dst, words)
    words = words.replace("-", " ").replace("'", "")
    return " ".join(words.split())


def digit_string(text: str) -> str:
    """The digits a transcript says, whether written as numerals or as digit words."""
    words = normalize(text).split()
    return "".join(_DIGIT_WORDS.get(w, "") for w in words)

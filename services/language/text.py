"""Transcript normalization shared by the extractors and the intent matcher.

A transcript reaches us in either of two spellings: an ASR's ("next tuesday at three pm", no
punctuation, numbers as words) or a person's ("Next Tuesday, 3 p.m."). ``normalize`` turns both into
one form: lower case, figures for spoken numbers (text2num's ``alpha2digit``), "pm"/"am" as single
tokens, and punctuation only where it belongs to a number ("12.50", "3:30", "12/5", "$").
"""

from __future__ import annotations

import re

from text_to_num import alpha2digit

# Words whose meaning alpha2digit would destroy: "the second one" must not become "2nd 1".
_PRONOUN_ONE = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|next|previous|other|that|this"
    r"|which|same|big|small|cheap|new|old|any|every|no|each|little|long|short)\s+ones?\b")
_A_MULTIPLIER = re.compile(r"\ban? (hundred|thousand|million)\b")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
# Keep "." ":" "/" only between figures; keep "$" "€" "£" "'" (inside words); the rest splits words.
_PUNCT = re.compile(r"(?<!\d)[.:/]|[.:/](?!\d)|[^\w\s.:/$€£'+]|(?<!\w)'|'(?!\w)")
_MERIDIEM = re.compile(r"(?<=\d)\s*([ap])\s*\.?\s*m\b\.?|(?<=\d)\s*([ap])\.(?=\s|$)")
_SPACES = re.compile(r"\s+")
# ASR output often drops the apostrophe; phrase lists are written with it.
_CONTRACTIONS = {
    "thats": "that's", "dont": "don't", "isnt": "isn't", "whats": "what's", "im": "i'm", "ive": "i've",
    "cant": "can't", "didnt": "didn't", "doesnt": "doesn't", "arent": "aren't", "wasnt": "wasn't",
    "youre": "you're", "theyre": "they're", "wouldnt": "wouldn't", "shouldnt": "shouldn't", "its": "it's",
    "hows": "how's", "wheres": "where's", "whens": "when's", "wanna": "want to",
    "gonna": "going to", "gotta": "got to", "okay": "ok", "o k": "ok", "alright": "all right",
}
_CONTRACTION = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _CONTRACTIONS), key=len, reverse=True)) + r")\b")


# An utterance is read up to here (minutes of speech): past it, work would grow with the input.
MAX_UTTERANCE_CHARS = 1000


def clean(text: str) -> str:
    """Lower case, one space between words, no punctuation except inside numbers."""
    text = text[:MAX_UTTERANCE_CHARS].translate(_QUOTES).lower()
    text = _THOUSANDS_COMMA.sub("", text)
    text = _PUNCT.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    return _CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group(1)], text)


def normalize(text: str) -> str:
    """``clean`` plus spoken numbers as figures ("two hundred and five" -> "205", "third" -> "3rd")
    and "p.m."/"p m" -> "pm"."""
    text = text[:MAX_UTTERANCE_CHARS].translate(_QUOTES).lower()
    text = _PRONOUN_ONE.sub(r"\1", text)
    text = _A_MULTIPLIER.sub(r"one \1", text)
    text = text.replace("-", " ")
    text = alpha2digit(text, "en", threshold=0)
    text = _MERIDIEM.sub(lambda m: " " + (m.group(1) or m.group(2)) + "m", text)
    return clean(text)


def words(text: str) -> list[str]:
    return text.split(" ") if text else []

"""dialtone.language: understanding callers, as a pure library.

Entity extractors (``entities``, ``when``; by type name in ``registry``), the intent matcher
(``intents``), say-as rendering (``say_as``) and recognition hints (``hints``). Pure functions of
text, DTMF, a clock and a time zone: no I/O, no gRPC, no knowledge of the services that use it
(the conversation runtime to fill slots and choose transitions, the speech gateway for ASR hints
and say-as before TTS). A service calls ``warm_up()`` once at start. See docs/understanding.md.
"""

from dialtone.language.entities import Amount
from dialtone.language.hints import Hints, hints_for
from dialtone.language.intents import Intent, IntentMatch, IntentMatcher, validate_intents
from dialtone.language.registry import ENTITY_TYPES, extract, to_json, validate_constraints, warm_up
from dialtone.language.say_as import SAY_AS_FILTERS, render

__all__ = [
    "ENTITY_TYPES", "SAY_AS_FILTERS", "Amount", "Hints", "Intent", "IntentMatch", "IntentMatcher", "extract",
    "hints_for", "render", "to_json", "validate_constraints", "validate_intents", "warm_up",
]

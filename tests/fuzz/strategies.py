"""Hypothesis strategies for every request message, built from the protobuf descriptors.

A field's type picks its strategy: strings with control characters, a trailing newline, unicode,
values past the services' limits and (rarely) a whole megabyte; integers at the limits of their
width; enum numbers no one defined; bytes of every length (and exactly one audio frame); nested
messages; repeated fields with a few or with thousands of entries; one member (or none) of each
oneof. ``hints`` name plausible values per field name (a valid session id, a configured backend),
drawn as often as hostile ones, so that generated requests also get past the first check and reach
the code behind it. ``crossed`` mixes a generated message into a valid one field by field, which
keeps the relations between fields (an idempotency key that starts with the session id) that
field-wise generation cannot find by chance.
"""

from __future__ import annotations

import reprlib
from bisect import bisect_right
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

MEGABYTE = 1 << 20
Hints = Mapping[str, st.SearchStrategy[Any]]

# Values that have broken parsers, id checks and header writers before.
INTERESTING_TEXT = (
    "", " ", "\n", "\r\n", "\x00", "\t", "abc\n", "abc\r\nX-Injected: 1", "a:1:0\n", ":0:0", "::", "0",
    "-1", "1e309", "NaN", "null", "{}", "[]", "[[[[", "{\"a\":", "${x}", "{order_id}", "../../etc/passwd",
    "%2e%2e%2f", "%00", "sip:@;?", "sip:bob@127.0.0.1:0", "tel:+15551234", "\u202e\u0645", "\ufeff",
    "\u2028", "\U0001f600" * 3, "x" * 129, "9" * 40,
)
_LONG_LENGTHS = (65, 129, 257, 2001, 4097, 65_537)


class _BriefRepr(reprlib.Repr):
    """Long strings and bytes as a prefix and their length."""

    def __init__(self) -> None:
        super().__init__()
        self.maxother = 160
        self.maxlevel, self.maxlist, self.maxdict, self.maxtuple = 8, 12, 12, 12

    def repr_str(self, value: str, level: int) -> str:
        return repr(value) if len(value) <= 80 else f"{value[:60]!r}...({len(value)} characters)"

    def repr_bytes(self, value: bytes, level: int) -> str:
        return repr(value) if len(value) <= 80 else f"{value[:60]!r}...({len(value)} bytes)"


_BRIEF = _BriefRepr()


def brief(value: Any) -> str:
    """A repr that stays readable for megabyte values and messages (failing examples are printed)."""
    if isinstance(value, Message):
        return f"{type(value).__name__}({_BRIEF.repr(MessageToDict(value, preserving_proto_field_name=True))})"
    if isinstance(value, list | tuple) and any(isinstance(item, Message) for item in value):
        return "[" + ", ".join(brief(item) for item in value) + "]"
    return _BRIEF.repr(value)


class Shown:
    """A generated value, printed briefly in hypothesis's report."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return brief(self.value)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints examples with this
        printer.text(repr(self))


def weighted(*choices: tuple[st.SearchStrategy[Any], int]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight; shrinks toward the first."""
    strategies = [strategy for strategy, _ in choices]
    bounds = list(accumulate(weight for _, weight in choices))
    return st.integers(0, bounds[-1] - 1).flatmap(lambda n: strategies[bisect_right(bounds, n)])


def _repeat(unit: str | bytes, size: int) -> Any:
    return (unit * (size // len(unit) + 1))[:size]


short_text = st.text(max_size=24)  # any code point but surrogates: control characters included
long_text = st.builds(_repeat, st.text(min_size=1, max_size=3), st.sampled_from(_LONG_LENGTHS))
huge_text = st.builds(_repeat, st.sampled_from(["a", "\n", "\u00e9", "{", "\U0001f600", "[{"]), st.just(MEGABYTE))


def text_values(hint: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    plain = weighted((short_text, 4), (st.sampled_from(INTERESTING_TEXT), 2))
    base = plain if hint is None else weighted((hint, 1), (plain, 1))
    trailing = base.flatmap(lambda text: st.sampled_from([text + "\n", text + "\r\n", text + "\x00"]))
    choices = [(st.sampled_from(INTERESTING_TEXT), 2), (short_text, 3), (trailing, 2), (long_text, 1),
               (huge_text, 1)]
    if hint is not None:
        choices.insert(0, (hint, 6))
    return weighted(*choices)


def bytes_values(hint: st.SearchStrategy[bytes] | None = None) -> st.SearchStrategy[bytes]:
    choices = [(st.binary(max_size=48), 3), (st.binary(min_size=640, max_size=640), 3),
               (st.builds(_repeat, st.binary(min_size=1, max_size=2), st.sampled_from(_LONG_LENGTHS)), 1),
               (st.builds(_repeat, st.just(b"\xff\x7f"), st.just(MEGABYTE)), 1)]
    if hint is not None:
        choices.insert(0, (hint, 4))
    return weighted(*choices)


def int_values(bits: int, signed: bool) -> st.SearchStrategy[int]:
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    limits = sorted({v for v in (low, low + 1, -1, 0, 1, 2, 599, 600, 601, 8000, 16000, (1 << 31) - 1, 1 << 31,
                                 (1 << 32) - 1, 1 << 32, high - 1, high) if low <= v <= high})
    return weighted((st.integers(0, 100), 3), (st.sampled_from(limits), 2), (st.integers(low, high), 2))


_INT_WIDTHS = {
    FieldDescriptor.TYPE_INT32: (32, True), FieldDescriptor.TYPE_SINT32: (32, True),
    FieldDescriptor.TYPE_SFIXED32: (32, True), FieldDescriptor.TYPE_UINT32: (32, False),
    FieldDescriptor.TYPE_FIXED32: (32, False), FieldDescriptor.TYPE_INT64: (64, True),
    FieldDescriptor.TYPE_SINT64: (64, True), FieldDescriptor.TYPE_SFIXED64: (64, True),
    FieldDescriptor.TYPE_UINT64: (64, False), FieldDescriptor.TYPE_FIXED64: (64, False),
}


def scalar_values(field: FieldDescriptor, hints: Hints) -> st.SearchStrategy[Any]:
    hint = hints.get(field.name)
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text_values(hint)
    if kind == FieldDescriptor.TYPE_BYTES:
        return bytes_values(hint)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        width = 32 if kind == FieldDescriptor.TYPE_FLOAT else 64
        values = weighted((st.floats(0, 1, width=width), 2), (st.floats(width=width), 2))
        return values if hint is None else weighted((hint, 1), (values, 1))
    if kind == FieldDescriptor.TYPE_ENUM:
        known = sorted(field.enum_type.values_by_number)
        return weighted((st.sampled_from(known), 3), (int_values(32, signed=True), 1))
    bits, signed = _INT_WIDTHS[kind]
    values = int_values(bits, signed)
    return values if hint is None else weighted((hint, 2), (values, 1))


def field_values(field: FieldDescriptor, hints: Hints, depth: int) -> st.SearchStrategy[Any]:
    """A value for one field: a scalar, a message, or a list of either."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        one = messages(field.message_type, hints, depth + 1)
    else:
        one = scalar_values(field, hints)
    if not field.is_repeated:
        return one
    # Many entries are small ones: thousands of megabyte values would only test gRPC's size limit.
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        small = messages(field.message_type, {}, depth + 1, small=True)
    else:
        small = short_text if field.type == FieldDescriptor.TYPE_STRING else one
    many = st.integers(100, 10_000).flatmap(lambda n: st.lists(small, min_size=1, max_size=8).map(
        lambda seed: [seed[i % len(seed)] for i in range(n)]))
    return weighted((st.lists(one, max_size=4), 4), (many, 1))


def _set(message: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        target = getattr(message, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def messages(descriptor: Descriptor, hints: Hints | None = None, depth: int = 0,
             small: bool = False) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``: every field maybe set, one member (or none) of each oneof."""
    hints = hints or {}
    cls = GetMessageClass(descriptor)
    if depth > 4:
        return st.builds(cls)
    plain = [f for f in descriptor.fields if f.containing_oneof is None]

    def values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
        if small and field.type == FieldDescriptor.TYPE_STRING:
            return weighted((short_text, 3), (st.sampled_from(INTERESTING_TEXT), 1))
        return field_values(field, hints, depth)

    optional = {f.name: values(f) for f in plain}
    oneofs = [st.one_of(st.none(), *(st.tuples(st.just(member.name), values(member)) for member in oneof.fields))
              for oneof in descriptor.oneofs]

    def build(parts: tuple[dict[str, Any], list[tuple[str, Any] | None]]) -> Message:
        fields, chosen = parts
        message = cls()
        for name, value in fields.items():
            _set(message, descriptor.fields_by_name[name], value)
        for member in chosen:
            if member is not None:
                _set(message, descriptor.fields_by_name[member[0]], member[1])
        return message

    return st.tuples(st.fixed_dictionaries({}, optional=optional), st.tuples(*oneofs).map(list)).map(build)


@st.composite
def crossed(draw: st.DrawFn, valid: st.SearchStrategy[Message], generated: st.SearchStrategy[Message]) -> Message:
    """A valid message with some of its fields (at least one) taken from a generated one."""
    message = draw(valid)
    other = draw(generated)
    chosen = draw(st.lists(st.sampled_from(list(message.DESCRIPTOR.fields)), min_size=1, max_size=3,
                           unique_by=lambda field: field.name))
    for field in chosen:
        if field.containing_oneof is not None:  # the other message's choice, whichever it is
            taken = other.WhichOneof(field.containing_oneof.name)
            message.ClearField(field.containing_oneof.name)
            if taken is not None:
                _set(message, message.DESCRIPTOR.fields_by_name[taken], getattr(other, taken))
            continue
        message.ClearField(field.name)
        if field.is_repeated or field.type != FieldDescriptor.TYPE_MESSAGE or other.HasField(field.name):
            _set(message, field, getattr(other, field.name))
    return message


def requests(descriptor: Descriptor, hints: Hints | None = None,
             valid: st.SearchStrategy[Message] | None = None) -> st.SearchStrategy[Message]:
    """Requests of one RPC: wholly generated, and (given a valid template) valid ones crossed with them."""
    generated = messages(descriptor, hints)
    if valid is None:
        return generated
    return weighted((crossed(valid, generated), 1), (generated, 1), (valid, 1))


@st.composite
def sequences(draw: st.DrawFn, session_ids: st.SearchStrategy[str],
              first: Callable[[str], st.SearchStrategy[Message]], later: Callable[[str], st.SearchStrategy[Message]],
              generated: st.SearchStrategy[Message], max_size: int = 6) -> list[Message]:
    """The messages of one client stream: mostly a right first message then later ones of the same
    session, with generated messages among them, and sometimes reordered or without the first."""
    session_id = draw(session_ids)
    body = draw(st.lists(weighted((later(session_id), 2), (generated, 1)), max_size=max_size))
    opening = draw(weighted((first(session_id), 3), (generated, 1)))
    shape = draw(st.sampled_from(["in order", "in order", "in order", "no first message", "shuffled"]))
    if shape == "no first message":
        return body or [opening]
    stream = [opening, *body]
    if shape == "shuffled":
        stream = draw(st.permutations(stream))
    return stream

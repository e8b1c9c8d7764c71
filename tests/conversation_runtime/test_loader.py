"""Load-time validation: every error kind, with its exact line, state and message."""

from __future__ import annotations

import textwrap

import pytest
from dialtone.conversation_runtime.core.errors import DialogLoadError
from dialtone.conversation_runtime.core.loader import load_dialog_text

VALID = """\
dialog:
  name: t
  initial: a
  variables: {n: 0}
  states:
    a:
      on_enter:
        - say: "hello"
      transitions:
        - event: speech
          condition: 'transcript == "yes"'
          target: b
    b:
      on_enter:
        - hangup: done
"""


def errors_of(text: str) -> list:
    with pytest.raises(DialogLoadError) as info:
        load_dialog_text(textwrap.dedent(text), "d.yaml")
    return info.value.errors


# (kind, yaml, line, col, state, words in the message)
CASES = [
    ("yaml_syntax", "dialog:\n  name: t\n  states: [a\n", 3, 11, None, "the '[' opened here is never closed"),
    # a quote left open on line 8 is reported there, not at the end of the file where the parser noticed
    ("yaml_syntax", VALID.replace('- say: "hello"', '- say: "hello'), 8, 1, None,
     "the quote opened on line 8 is closed only on line 11"),
    # a key indented one space short of its siblings is reported on its own line, in plain words
    ("yaml_syntax", VALID.replace("      transitions:", "     transitions:"), 9, 6, None,
     "line 9 is indented by 5 spaces, which lines up with none of the lines above it"),
    ("yaml_syntax", VALID.replace("          target: b", "           target: b"), 12, 12, None,
     "line 12 is indented by 11 spaces"),
    ("unknown_key", VALID.replace("  initial: a\n", "  initial: a\n  colour: red\n"), 4, 3, None, "'colour'"),
    ("unknown_key", VALID.replace("          target: b\n", "          target: b\n          tagret: b\n"),
     13, 11, "a", "'tagret'"),
    ("wrong_type", VALID.replace("      transitions:\n        - event: speech",
                                 "      transitions: 7\n      x_:\n        - event: speech"), 9, 20, "a", "list"),
    ("missing_key", VALID.replace("  initial: a\n", ""), 1, 1, None, "needs 'initial'"),
    ("unknown_initial", VALID.replace("initial: a", "initial: start"), 3, 12, None, "'start' does not exist"),
    ("unknown_target", VALID.replace("target: b", "target: bb"), 12, 19, "a", "'bb' does not exist"),
    ("unreachable_state", VALID + "    orphan:\n      on_enter:\n        - hangup: x\n", 16, 5, "orphan",
     "unreachable"),
    ("dead_end", VALID.replace("        - hangup: done\n", "        - say: bye\n"), 13, 5, "b", "no way out"),
    ("cel_syntax", VALID.replace("'transcript == \"yes\"'", "'transcript == '"), 11, 22, "a", "CEL syntax"),
    ("bad_regex", VALID.replace("'transcript == \"yes\"'", "'transcript.matches(\"(?=yes)y\")'"), 11, 22, "a",
     "bad regular expression"),
    ("unknown_variable", VALID.replace("'transcript == \"yes\"'", "'transcrpt == \"yes\"'"), 11, 22, "a",
     "'transcrpt'"),
    ("unknown_variable", VALID.replace('- say: "hello"', '- say: "hello ${name}"'), 8, 16, "a", "'name'"),
    ("unknown_variable", VALID.replace('- say: "hello"', '- say: "you said ${transcript}"'), 8, 16, "a",
     "'transcript'"),
    ("bad_duration", VALID.replace("          target: b\n", "          target: b\n        - event: timeout\n"
                                   "          after: 8 seconds\n          target: b\n"), 14, 18, "a", "bad duration"),
    ("bad_duration", VALID.replace("  variables: {n: 0}\n", "  variables: {n: 0}\n  max_duration: 10\n"),
     5, 17, None, "unit"),
    ("unhandled_backend_error", VALID.replace('        - say: "hello"\n',
                                              '        - say: "hello"\n        - call: {service: s, method: m}\n')
     .replace("    b:\n", "    b:\n      x: 1\n").replace("      x: 1\n", ""), 9, 11, "a", "handled nowhere"),
    ("unknown_action", VALID.replace('- say: "hello"', '- speak: "hello"'), 8, 11, "a", "unknown action 'speak'"),
    ("unknown_event", VALID.replace("event: speech", "event: voice"), 10, 18, "a", "unknown event"),
    ("duplicate_key", VALID.replace("  initial: a\n", "  initial: a\n  initial: a\n"), 4, 3, None, "duplicate"),
    ("reserved_name", VALID.replace("{n: 0}", "{transcript: x}"), 4, 15, None, "reserved"),
    ("bad_value", VALID.replace("      on_enter:\n        - say: \"hello\"",
                                "      input: {barge_in: sometimes}\n      on_enter:\n        - say: \"hello\""),
     7, 25, "a", "barge_in"),
    ("missing_key", VALID.replace("          target: b\n", "          target: b\n        - event: timeout\n"
                                  "          target: b\n"), 13, 11, "a", "needs 'after'"),
    ("misplaced_key", VALID.replace("          target: b\n", "          target: b\n          after: 3s\n"),
     13, 11, "a", "'after' belongs"),
    # Expressions that would raise RecursionError or hold the event loop at the first event (issue 21).
    ("expression_too_deep", VALID.replace("'transcript == \"yes\"'", "'" + "(" * 20 + "transcript" + ")" * 20
                                          + " == \"yes\"'"), 11, 22, "a", "nests more than 100 levels"),
    ("expression_too_deep", VALID.replace('- say: "hello"', '- say: "hello ${' + "!" * 200 + 'true}"'), 8, 16, "a",
     "nests more than 100 levels"),
    ("expression_too_long", VALID.replace("'transcript == \"yes\"'", "'" + "!" * 1000 + "true'"), 11, 22, "a",
     "1004 characters long; the limit is 1000"),
    ("expression_too_costly", VALID.replace("'transcript == \"yes\"'",
                                            "'[1,2].all(a, [1,2].all(b, [1,2].all(c, a + b + c > 0)))'"), 11, 22, "a",
     "more than 2 comprehensions"),
    ("yaml_syntax", VALID.replace("variables: {n: 0}", "variables: {n: " + "[" * 100 + "]" * 100 + "}"), 4, 79, None,
     "nested deeper than 64 levels"),
]


@pytest.mark.parametrize(("kind", "text", "line", "col", "state", "words"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_error_kind_is_refused_at_its_line(kind, text, line, col, state, words) -> None:
    """A wrong dialog is refused with the error's kind, line, column, state and a readable message."""
    errors = errors_of(text)
    matching = [e for e in errors if e.kind == kind]
    assert matching, f"no {kind} error in {[str(e) for e in errors]}"
    error = matching[0]
    assert (error.line, error.col, error.state) == (line, col, state), str(error)
    assert words in error.message
    assert str(error).startswith(f"d.yaml:{line}:{col}: ")


def test_valid_dialog_compiles() -> None:
    """The base dialog of the table is valid, so each case fails only for its own mistake."""
    dialog = load_dialog_text(VALID, "d.yaml")
    assert dialog.initial == "a"
    assert dialog.states["b"].final
    assert not dialog.states["a"].final


def test_every_error_is_reported_at_once() -> None:
    """All problems of a file are listed together, in line order."""
    text = VALID.replace("target: b", "target: zz").replace("initial: a", "initial: q")
    errors = errors_of(text)
    assert {"unknown_initial", "unknown_target"} <= {e.kind for e in errors}
    assert [e.line for e in errors] == sorted(e.line for e in errors)


def test_backend_errors_handled_by_condition_on_error_kind() -> None:
    """A call whose state handles `!result.ok` is accepted; one handling only `result.ok` is refused."""
    text = VALID.replace('        - say: "hello"\n', '        - call: {service: s, method: m}\n')
    handled = text.replace("        - event: speech\n", "        - event: backend.result\n"
                           "          condition: '!result.ok'\n          target: b\n        - event: speech\n")
    load_dialog_text(handled, "d.yaml")
    only_ok = handled.replace("'!result.ok'", "'result.ok'")
    assert [e.kind for e in errors_of(only_ok)] == ["unhandled_backend_error"]


def test_macro_bound_names_are_not_unknown_variables() -> None:
    """Names bound inside CEL macros (`exists(w, ...)`) are not taken for dialog variables."""
    text = VALID.replace("'transcript == \"yes\"'", "'transcript.split(\" \").exists(w, w == \"yes\")'")
    text = text.replace("'transcript.split(\" \").exists(w, w == \"yes\")'", "'[1, 2].exists(w, w == n)'")
    load_dialog_text(text, "d.yaml")


def test_yaml_alias_bomb_is_refused() -> None:
    """Nine levels of ten aliases each (a billion values once expanded) are refused, not expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(lines) + "\n" + VALID.replace("variables: {n: 0}", "variables: {n: *a8}")
    errors = errors_of(text)
    assert [e.kind for e in errors] == ["yaml_syntax"] and "aliases" in errors[0].message

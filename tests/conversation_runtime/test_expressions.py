"""CEL expressions and templates: compiled once, names found, results remembered only when safe."""

from __future__ import annotations

import pytest
from dialtone.conversation_runtime.core.expressions import (
    MAX_RENDERED_CHARS,
    MAX_STEPS,
    EvaluationError,
    ExpressionError,
    compile_expression,
    compile_template,
)


def test_free_names_exclude_macro_variables_and_functions() -> None:
    """Only the identifiers an expression reads from outside count as names."""
    expr = compile_expression('items.exists(i, i == digit) && size(only_digits(transcript)) > n')
    assert expr.names == {"items", "digit", "transcript", "n"}


def test_remembered_results_keep_cel_types_apart() -> None:
    """1 and 1.0 are equal in Python but different CEL values; remembered results never mix them up."""
    expr = compile_expression("x == 1")
    assert expr.evaluate({"x": 1}) is True
    with pytest.raises(EvaluationError, match="no matching overload"):  # CEL: double == int is an error
        expr.evaluate({"x": 1.0})
    assert expr.evaluate({"x": 2}) is False
    assert expr.evaluate({"x": 1}) is True


def test_failures_are_remembered_as_failures() -> None:
    """A missing name fails each time (as an EvaluationError), and a condition that fails is false."""
    expr = compile_expression("missing + 1")
    for _ in range(2):
        with pytest.raises(EvaluationError):
            expr.evaluate({})
    assert compile_expression("nope == 1").test({}) is False


def test_structured_values_are_evaluated_every_time() -> None:
    """Maps and lists (a backend body) are not remembered; each evaluation sees the current value."""
    expr = compile_expression("result.ok && result.body.status == 'shipped'")
    assert expr.evaluate({"result": {"ok": True, "body": {"status": "shipped"}}}) is True
    assert expr.evaluate({"result": {"ok": True, "body": {"status": "lost"}}}) is False


def test_template_keeps_literal_text_and_renders_values() -> None:
    """${...} parts are replaced by their values; numbers print without a trailing .0."""
    template = compile_template("Order ${order_id}: ${n} items, ${ok}${missing}")
    assert template.render({"order_id": "12", "n": 3.0, "ok": True}) == "Order 12: 3 items, yes"
    with pytest.raises(ExpressionError, match="unterminated"):
        compile_template("hello ${name")


@pytest.mark.parametrize("transcript,digits", [
    ("Order 12 34.", "1234"),
    ("One, two, three, four, five.", "12345"),
    ("my number is four oh seven 9", "4079"),
    ("Someone said nothing", ""),
    ("1-2-3-4-5", "12345"),
])
def test_only_digits_reads_numerals_and_spelled_digits(transcript: str, digits: str) -> None:
    """only_digits keeps the digits of a transcript, whether the ASR wrote them as numerals or words."""
    assert compile_expression("only_digits(transcript)").evaluate({"transcript": transcript}) == digits


def _list(n: int) -> str:
    return "[" + ",".join(str(i) for i in range(n)) + "]"


# The reproductions (each validated "ok", then crashed or froze the runtime), and their kinds.
HOSTILE = [
    ("200 nested parentheses", "(" * 200 + "1" + ")" * 200 + " == 1", "expression_too_deep"),
    ("1,000 !", "!" * 1000 + "true", "expression_too_long"),
    ("200 !", "!" * 200 + "true", "expression_too_deep"),
    ("1,000-deep list", "[" * 1000 + "1" + "]" * 1000 + " == []", "expression_too_long"),
    ("60-deep list", "[" * 60 + "1" + "]" * 60 + " == []", "expression_too_deep"),
    ("100 kB + chain", "+".join(["1"] * 50_000) + " > 0", "expression_too_long"),
    ("100 kB || chain", " || ".join(["false"] * 12_500), "expression_too_long"),
    ("300-operand + chain", "+".join(["1"] * 300) + " > 0", "expression_too_deep"),
    ("30^3 comprehension", f"{_list(30)}.all(x, {_list(30)}.all(y, {_list(30)}.all(z, x + y + z >= 0)))",
     "expression_too_costly"),
    ("100^4 over a variable", "r.all(a, r.all(b, r.all(c, r.all(d, a + b + c + d >= 0))))", "expression_too_costly"),
    ("100^2 over literal lists", f"{_list(100)}.all(a, {_list(100)}.all(b, a + b >= 0))", "expression_too_costly"),
    ("reduce doubling a string", "r.reduce(acc, i, 'ab', acc + acc).size() > 0", "expression_too_costly"),
]


@pytest.mark.parametrize(("source", "kind"), [(s, k) for _, s, k in HOSTILE], ids=[n for n, _, _ in HOSTILE])
def test_expressions_too_long_deep_or_costly_are_refused_at_compile(source: str, kind: str) -> None:
    """Refused when compiled (so the dialog is refused at load) with a kind and a short message."""
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert info.value.kind == kind
    assert len(str(info.value)) < 200


def test_the_deepest_expression_allowed_evaluates_on_a_deep_stack() -> None:
    """What the nesting limit lets through evaluates without RecursionError, even 300 frames down (the
    runtime evaluates conditions deep in its own call stack); one more level is refused."""
    allowed = ""
    for brackets in range(1, 50):
        candidate = "(" * brackets + "x" + ")" * brackets + " == 1"
        try:
            compile_expression(candidate)
        except ExpressionError:
            break
        allowed = candidate
    assert allowed.count("(") >= 8

    def down(frames: int) -> bool:
        return compile_expression(allowed).evaluate({"x": 1}) if frames == 0 else down(frames - 1)
    assert down(300) is True
    chain = "!" * 90 + "true"
    assert compile_expression(chain).evaluate({}) is True


def test_evaluation_stops_at_its_step_budget() -> None:
    """Two comprehensions over a list that arrives at run time: small, evaluated; large, it fails after
    MAX_STEPS steps (a condition that fails is false) instead of holding the event loop."""
    expr = compile_expression("r.all(a, r.all(b, a + b >= 0))")
    assert expr.evaluate({"r": list(range(10))}) is True
    with pytest.raises(EvaluationError, match=f"more than {MAX_STEPS} steps"):
        expr.evaluate({"r": list(range(300))})
    assert expr.test({"r": list(range(300))}) is False
    assert compile_expression("r.exists(a, a == 99)").evaluate({"r": list(range(100))}) is True


def test_rendered_template_is_cut_to_the_limit() -> None:
    """A say rendering a huge value still fits the runtime's gRPC message."""
    text = compile_template("You said ${s}${s}").render({"s": "x" * MAX_RENDERED_CHARS})
    assert len(text) == MAX_RENDERED_CHARS

"""CEL expressions and templates: compiled once, names found, results remembered only when safe."""

from __future__ import annotations

import pytest
from dialtone.conversation_runtime.core.expressions import (
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

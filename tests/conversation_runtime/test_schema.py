"""The published JSON Schema (what editors complete with) agrees with the loader."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "dialog.schema.json").read_text())
EXAMPLES = sorted((REPO / "services" / "conversation_runtime" / "examples").glob("*[!t].yaml"))


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself is well formed."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_match_the_schema_and_point_editors_at_it(path: Path) -> None:
    """Each example validates and names the schema for yaml-language-server."""
    assert len(EXAMPLES) == 4
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../../schemas/dialog.schema.json\n")
    jsonschema.validate(yaml.safe_load(text), SCHEMA)


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda d: d["dialog"].update(colour="red"), "colour"),
    (lambda d: d["dialog"]["states"]["greet"]["transitions"][0].update(event="voice"), "voice"),
    (lambda d: d["dialog"]["states"]["greet"]["on_enter"].append({"speak": "x"}), "speak"),
    (lambda d: d["dialog"].update(dead_air="ten seconds"), "ten seconds"),
])
def test_schema_rejects_what_the_loader_rejects(mutate, words) -> None:
    """Unknown keys, events, actions and bad durations are schema errors too."""
    data = yaml.safe_load((EXAMPLES[2]).read_text())
    mutate(data)
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(data, SCHEMA)
    assert words in str(info.value)

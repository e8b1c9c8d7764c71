"""`dialtone understand` as an operator runs it: a real process, its stdout and exit status."""

import json
import subprocess
import sys
from pathlib import Path

import dialtone.language
import pytest

LABELLED = Path(dialtone.language.__file__).parent / "data" / "telephony_intents.yaml"
EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "conversation_runtime" / "examples"
PHARMACY = EXAMPLES / "pharmacy_refill.yaml"
CLOCK = ["--now", "2026-12-03T10:00", "--tz", "America/New_York"]


def understand(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dialtone", "understand", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("args", "expected"), [
    (["date", "next tuesday at three pm", *CLOCK], "2026-12-08"),
    (["time", "next tuesday at three pm", *CLOCK], "15:00"),
    (["datetime", "tomorrow at half past nine", *CLOCK], "2026-12-04T09:30-05:00"),
    (["digits", "oh four double five", "--min-length", "4"], "0455"),
    (["digits", "", "--dtmf", "0412#"], "0412"),
    (["yes_no", "yeah that's right"], True),
    (["number", "two hundred and five"], 205),
    (["choice", "the second one", "--options", "small,medium,large"], "medium"),
    (["amount", "twelve fifty", "--constraint", "currency=EUR"], {"value": "12.50", "currency": "EUR"}),
    (["date", "december fifth", *CLOCK, "--constraint", "prefer=past"], "2025-12-05"),
    (["alphanumeric", "b as in boy seven alpha"], "B7A"),
])
def test_prints_the_value_as_json(args, expected):
    done = understand(*args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


def test_no_match_exits_1():
    done = understand("digits", "i don't know", "--min-length", "4")
    assert (done.returncode, done.stdout.strip()) == (1, "null")


def test_intent_from_a_file():
    done = understand("intent", "--intents", str(LABELLED), "can i talk to a real person")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["intent"] == "agent" and 0.45 <= result["confidence"] <= 1

    done = understand("intent", "--intents", str(LABELLED), "tell me a joke")
    assert done.returncode == 1 and json.loads(done.stdout)["intent"] is None


def test_intent_as_a_dialog_state_hears_it():
    """--dialog/--state: the dialog's intents, only those the state (and the handlers) listen for."""
    done = understand("intent", "--dialog", str(PHARMACY), "--state", "prescription", "can i speak with the pharmacist")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["intent"] == "pharmacist"
    done = understand("intent", "--dialog", str(PHARMACY), "--state", "prescription", "what's the weather like")
    assert done.returncode == 1 and json.loads(done.stdout)["intent"] is None


@pytest.mark.parametrize(("args", "message"), [
    (["colour", "red"], "unknown type 'colour'"),
    (["digits", "1234", "--min-length", "5", "--max-length", "3"], "min_length 5 is above max_length 3"),
    (["time", "3 pm", "--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
    (["date", "tomorrow", "--now", "yesterday"], "--now wants ISO 8601"),
    (["choice", "big"], "choice: 'options' is required"),
    (["intent", "hello"], "give --intents FILE"),
    (["intent", "hello", "--dialog", str(PHARMACY), "--state", "nope"], "no state 'nope' in pharmacy_refill"),
    (["intent", "hello", "--intents", "/nonexistent/intents.yaml"], "cannot read /nonexistent/intents.yaml"),
    (["intent", "hello", "--intents", str(LABELLED), "--among", "agent,nope"], "unknown intent(s) nope"),
])
def test_bad_input_exits_2_with_a_clear_message(args, message):
    done = understand(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_an_intent_without_examples_is_refused(tmp_path):
    path = tmp_path / "intents.yaml"
    path.write_text("agent:\n  keywords: [agent]\n")
    done = understand("intent", "--intents", str(path), "agent please")
    assert done.returncode == 2 and "intent 'agent' has no examples" in done.stderr

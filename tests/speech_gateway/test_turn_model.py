"""Smart Turn v3.2 (the ONNX model `make venv` installs) on human speech: Asterisk's recorded prompts
(Allison's voice, Debian's asterisk-core-sounds-en-wav) through the telephone path."""

from __future__ import annotations

from pathlib import Path

import pytest
from dialtone.speech_gateway.audio_io import read_wav, telephone_path
from dialtone.speech_gateway.core.turn import Completeness, with_turn_model
from dialtone.speech_gateway.engines.base import ModelError
from dialtone.speech_gateway.engines.turn_model import SmartTurn, default_model_file

from tests.speech_gateway.corpus import SOUNDS

FINISHED = ("auth-thankyou", "please-try-again", "one-moment-please")        # "Thank you." ...
UNFINISHED = ("vm-youhave", "if-correct-press")   # "you have", "If this is correct, press..."


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn()


def heard(name: str) -> bytes:
    pcm, rate = read_wav(SOUNDS / f"{name}.wav")
    return telephone_path(pcm, rate) + bytes(3200)       # and the 100 ms of silence it is asked after


def test_finished_prompts_sound_finished_and_fragments_do_not(model: SmartTurn) -> None:
    finished = {name: model.probability(heard(name)) for name in FINISHED}
    unfinished = {name: model.probability(heard(name)) for name in UNFINISHED}
    assert min(finished.values()) > 0.5 > max(unfinished.values()), (finished, unfinished)


def test_the_model_only_decides_what_the_words_leave_open() -> None:
    assert with_turn_model(Completeness.OTHER, 0.9, 0.5) is Completeness.COMPLETE
    assert with_turn_model(Completeness.OTHER, 0.1, 0.5) is Completeness.INCOMPLETE
    assert with_turn_model(Completeness.OTHER, None, 0.5) is Completeness.OTHER
    assert with_turn_model(Completeness.INCOMPLETE, 0.99, 0.5) is Completeness.INCOMPLETE   # "... and"
    assert with_turn_model(Completeness.COMPLETE, 0.01, 0.5) is Completeness.COMPLETE       # 4 of 4 digits


def test_a_missing_or_broken_model_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="make venv"):
        SmartTurn(str(tmp_path / "absent.onnx"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a usable Smart Turn model"):
        SmartTurn(str(broken))
    assert Path(default_model_file()).is_file(), "make venv installs the model (scripts/fetch_smart_turn.py)"

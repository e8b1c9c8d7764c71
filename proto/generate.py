"""Generate the dialtone.v1 Python modules from proto/dialtone/v1/*.proto.

Run at build/install time (setup.py calls it, `make` calls it); the generated
files are git-ignored and never edited by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
OUT = ROOT / "services"  # `dialtone` is mapped onto services/, so dialtone/v1 -> services/v1


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "dialtone" / "v1").glob("*.proto"))


def generate(out_root: Path = OUT) -> None:
    from grpc_tools import protoc
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    # protoc writes dialtone/v1/x_pb2.py under --python_out; we want services/v1/,
    # so generate into a staging tree and move the files.
    staging = ROOT / "build" / "proto-gen"
    staging.mkdir(parents=True, exist_ok=True)
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={staging}",
        f"--pyi_out={staging}",
        f"--grpc_python_out={staging}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on " + " ".join(files))
    target = out_root / "v1"
    target.mkdir(parents=True, exist_ok=True)
    for generated in (staging / "dialtone" / "v1").iterdir():
        if generated.suffix in (".py", ".pyi") and generated.name != "__init__.py":
            (target / generated.name).write_bytes(generated.read_bytes())


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)

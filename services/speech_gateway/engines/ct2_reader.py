"""Read a CTranslate2 ``model.bin`` (binary versions 5-6) into numpy arrays.

CTranslate2 has no public reader for its own file (only the C++ loader), and the
ggml conversion needs the raw tensors, so this is the ~40-line reader. Layout (from
``ctranslate2/specs/model_spec.py::_serialize``): u32 version, string spec name, u32
revision, u32 count, then per variable: string name, u8 rank, u32 dims, u8 dtype,
u32 byte count, data; then u32 alias count and (alias, target) string pairs.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


def _read(f: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise CT2FormatError("model.bin ends early (truncated file)")
    return struct.unpack(fmt, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "<H")
    raw = f.read(length)
    if len(raw) != length:
        raise CT2FormatError("model.bin ends early (truncated file)")
    return raw.rstrip(b"\0").decode("utf-8")


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """Return (spec name, {variable name: array}); aliases resolve to their target array."""
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        (version,) = _read(f, "<I")
        if version not in (5, 6):
            raise CT2FormatError(f"{path}: CTranslate2 binary version {version} is not supported (5 or 6)")
        spec = _read_string(f)
        _read(f, "<I")  # revision
        (count,) = _read(f, "<I")
        for _ in range(count):
            name = _read_string(f)
            (rank,) = _read(f, "<B")
            dims = _read(f, "<" + "I" * rank) if rank else ()
            (dtype_id,) = _read(f, "<B")
            (nbytes,) = _read(f, "<I")
            if dtype_id >= len(_DTYPES) or _DTYPES[dtype_id] == "bfloat16":
                raise CT2FormatError(f"{path}: variable {name} has unsupported dtype id {dtype_id}")
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise CT2FormatError("model.bin ends early (truncated file)")
            variables[name] = np.frombuffer(data, dtype=np.dtype(_DTYPES[dtype_id]).newbyteorder("<")).reshape(dims)
        (aliases,) = _read(f, "<I")
        for _ in range(aliases):
            alias, target = _read_string(f), _read_string(f)
            if target in variables:
                variables[alias] = variables[target]
    return spec, variables

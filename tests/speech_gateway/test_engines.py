"""Engine adapters and helpers without the slow models: the worker pool, G.711, WAV
parsing, the CT2 reader's errors, model-path errors and the light TTS engines."""

from __future__ import annotations

import asyncio
import struct
import threading
import time

import numpy as np
import pytest
from dialtone.speech_gateway.audio_io import AudioFileError, read_wav, ulaw_decode, ulaw_encode, write_wav
from dialtone.speech_gateway.config import AsrConfig, TtsConfig
from dialtone.speech_gateway.engines.base import ModelError
from dialtone.speech_gateway.engines.ct2_reader import CT2FormatError, read_ct2_model
from dialtone.speech_gateway.engines.factory import build_asr, build_tts
from dialtone.speech_gateway.engines.ggml_convert import convert_ct2_to_ggml, mel_filters
from dialtone.speech_gateway.engines.pool import EnginePool, PoolBusy
from dialtone.speech_gateway.engines.tts_espeak import parse_wav_stream, split_sentences
from dialtone.speech_gateway.textnorm import digit_string, normalize


def test_ulaw_round_trip_is_close_and_matches_g711_reference_codes():
    """Known G.711 µ-law codes: 0 -> 0xFF, -1 -> 0x7F, full scale -> 0x80 / 0x00."""
    codes = ulaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16))
    assert codes.tolist() == [0xFF, 0x7F, 0x80, 0x00]
    x = np.linspace(-30000, 30000, 1000).astype(np.int16)
    y = ulaw_decode(ulaw_encode(x)).astype(np.int32)
    assert np.max(np.abs(y - x) / np.maximum(np.abs(x), 256)) < 0.07


def test_read_wav_of_any_rate_and_width(tmp_path):
    path = tmp_path / "a.wav"
    pcm = (np.sin(np.arange(800) / 5) * 10000).astype("<i2").tobytes()
    write_wav(path, pcm, 11025)
    assert read_wav(path) == (pcm, 11025)


def test_read_wav_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(AudioFileError, match="bad.wav: not a PCM WAV file"):
        read_wav(bad)
    with pytest.raises(AudioFileError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_parse_wav_stream_accepts_placeholder_sizes_and_refuses_junk():
    header = (b"RIFF" + struct.pack("<I", 0x7FFFF000) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
              + struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16) + b"data" + struct.pack("<I", 0x7FFFF000))
    assert parse_wav_stream(header + b"\x01\x02\x03") == (b"\x01\x02", 22050)
    with pytest.raises(ValueError, match="not a RIFF/WAVE stream"):
        parse_wav_stream(b"garbage")


def test_split_sentences():
    assert split_sentences("Hello there. How are you?  Fine!") == ["Hello there.", "How are you?", "Fine!"]


def test_ct2_reader_refuses_other_files(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(struct.pack("<I", 99))
    with pytest.raises(CT2FormatError, match="binary version 99 is not supported"):
        read_ct2_model(path)
    path.write_bytes(struct.pack("<I", 6) + b"\x05")
    with pytest.raises(CT2FormatError, match="truncated"):
        read_ct2_model(path)
    with pytest.raises(CT2FormatError, match="no model.bin"):
        convert_ct2_to_ggml(tmp_path / "nowhere", tmp_path / "out.bin")


def test_mel_filters_match_whispers_shape_and_normalisation():
    filters = mel_filters()
    assert filters.shape == (80, 201)
    assert (filters >= 0).all() and (filters.sum(axis=1) > 0).all()
    # Slaney area normalisation: each triangle's peak is 2 / bandwidth; the first band is 0-~53 Hz wide.
    assert filters.argmax(axis=1).tolist() == sorted(filters.argmax(axis=1).tolist())


def test_missing_models_give_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="convert-ggml"):
        build_asr(AsrConfig(engine="whispercpp", ggml_model=str(tmp_path / "none.bin")))
    with pytest.raises(ModelError, match="model.bin missing"):
        build_asr(AsrConfig(model_dir=str(tmp_path)))
    with pytest.raises(ModelError, match="piper voice model not found"):
        build_tts(TtsConfig(voice=str(tmp_path / "none.onnx")))


@pytest.mark.parametrize("engine", ["espeak", "flite"])
def test_light_tts_engines_stream_one_chunk_per_sentence(engine):
    tts = build_tts(TtsConfig(engine=engine))
    chunks = list(tts.synthesize("Hello there. Goodbye now."))
    assert len(chunks) == 2
    assert all(len(c) > tts.sample_rate // 5 for c in chunks)  # each at least 100 ms of audio


def test_flite_unknown_voice_is_an_error_not_silence():
    with pytest.raises(ModelError, match="flite has no voice 'nosuchvoice'; built-in voices: .*slt"):
        build_tts(TtsConfig(engine="flite", voice="nosuchvoice"))


def test_normaliser_reads_long_numbers_digit_by_digit():
    assert normalize("Press 1, or dial 8500 for voice mail.") == \
        "press one or dial eight five zero zero for voicemail"
    assert digit_string("It's 4, 5, 6 and seven") == "4567"


async def test_pool_runs_off_the_loop_and_refuses_beyond_its_queue():
    gate = threading.Event()
    pool = EnginePool("test", ["engine-a"], max_queue=1)
    first = asyncio.ensure_future(pool.run(lambda e: (gate.wait(5), e)[1]))
    second = asyncio.ensure_future(pool.run(lambda e: e + "!"))
    await asyncio.sleep(0.05)
    assert pool.queued == 1
    with pytest.raises(PoolBusy, match="test pool is full"):
        await pool.run(lambda e: e)
    gate.set()
    assert await first == "engine-a" and await second == "engine-a!"
    assert pool.idle
    pool.shutdown()


async def test_pool_stream_yields_items_and_stops_the_job_when_left_early():
    produced = []

    def job(engine):
        for i in range(100):
            produced.append(i)
            time.sleep(0.005)  # a sentence takes time to synthesise
            yield i

    pool = EnginePool("stream", [object()])
    got = []
    async for item in pool.stream(job):
        got.append(item)
        if item == 2:
            break
    await asyncio.sleep(0.1)
    assert got == [0, 1, 2] and len(produced) < 100
    pool.shutdown()


async def test_pool_stream_reraises_the_job_error():
    def job(engine):
        yield 1
        raise RuntimeError("engine broke")

    pool = EnginePool("err", [object()])
    with pytest.raises(RuntimeError, match="engine broke"):
        async for _ in pool.stream(job):
            pass
    pool.shutdown()


async def test_prompt_renderer_streams_then_serves_repeats_from_the_cache():
    """A prompt is rendered sentence by sentence through the pool, then a repeat comes from the cache
    (same audio, no engine call); prerender fills the cache at start."""
    from dialtone.speech_gateway.prompts import PromptRenderer

    engine = build_tts(TtsConfig(engine="espeak"))
    pool = EnginePool("tts-test", [engine])
    renderer = PromptRenderer(pool, engine, cache_entries=1)
    first = [c async for c in renderer.render("One. Two.")]
    assert len(first) == 2 and renderer.cached("One. Two.") == first
    pool.shutdown()  # a cache hit must not need a worker
    assert [c async for c in renderer.render("One. Two.")] == first
    renderer2 = PromptRenderer(EnginePool("tts-test2", [engine]), engine, cache_entries=1)
    await renderer2.prerender(["Welcome.", "Goodbye."])
    assert renderer2.cached("Goodbye.") is not None and renderer2.cached("Welcome.") is None  # LRU of 1


class CountingTts:
    """espeak-ng (a real engine) counting what it is asked to synthesize."""

    def __init__(self) -> None:
        self.engine = build_tts(TtsConfig(engine="espeak"))
        self.name, self.voice, self.sample_rate = self.engine.name, self.engine.voice, self.engine.sample_rate
        self.asked: list[str] = []

    def synthesize(self, text: str):
        self.asked.append(text)
        time.sleep(0.05)   # long enough that a prompt arrives while the part is still being rendered
        yield from self.engine.synthesize(text)


async def test_a_prompt_rendered_ahead_is_not_rendered_again():
    """An eager reply: its parts render ahead; the Say that comes while they are still on their way waits
    for them (one synthesis per part) and gets the same audio."""
    from dialtone.speech_gateway.prompts import PromptRenderer

    tts = CountingTts()
    pool = EnginePool("tts-ahead", [tts])
    renderer = PromptRenderer(pool, tts, cache_entries=16, read_digits_from=4)
    reply = "One moment while I look up order 8392."
    assert renderer.ahead([reply]) == ["One moment while I look up order", "8 3 9 2."]
    assert renderer.first_audio_from(reply) == "ahead"
    said = [c async for c in renderer.render(reply)]
    assert tts.asked == ["One moment while I look up order", "8 3 9 2."]
    assert said == renderer.cache.get(tts.voice, "One moment while I look up order") + renderer.cache.get(
        tts.voice, "8 3 9 2.")
    assert renderer.first_audio_from(reply) == "hit"
    pool.shutdown()


async def test_a_reply_dropped_before_it_is_rendered_is_not_rendered():
    """An eager reply for words the caller did not end with: dropped, its queued part never synthesized
    and nothing cached; one a prompt already waits for is not dropped under it."""
    from dialtone.speech_gateway.prompts import PromptRenderer

    tts = CountingTts()
    pool = EnginePool("tts-drop", [tts])
    renderer = PromptRenderer(pool, tts, cache_entries=16)
    busy = asyncio.ensure_future(pool.run(lambda engine: time.sleep(0.3)))   # the worker is taken
    parts = renderer.ahead(["Sorry, I need the whole number please."])
    await asyncio.sleep(0.05)
    renderer.drop(parts)
    await busy
    await asyncio.sleep(0.2)
    assert tts.asked == [] and renderer.first_audio_from("Sorry, I need the whole number please.") == "miss"

    parts = renderer.ahead(["Your order is on its way."])
    waiting = asyncio.ensure_future(_collect(renderer.render("Your order is on its way.")))
    await asyncio.sleep(0.01)
    renderer.drop(parts)
    assert len(await waiting) > 0 and tts.asked == ["Your order is on its way."]
    pool.shutdown()


async def _collect(chunks):
    return [c async for c in chunks]


async def test_fixed_prompt_openings_render_while_the_pool_is_idle():
    """The runtime's fixed prompt openings: each renders once, as the part a prompt starting with it is
    split at; one that would not be split is not rendered."""
    from dialtone.speech_gateway.prompts import PromptRenderer

    tts = CountingTts()
    pool = EnginePool("tts-openings", [tts])
    renderer = PromptRenderer(pool, tts, cache_entries=16, read_digits_from=4)
    renderer.openings(["One moment while I look up order", "Got it, your order", "Order"])
    renderer.openings(["One moment while I look up order"])   # a second call's: already queued
    for _ in range(100):
        if len(tts.asked) == 2 and renderer.first_audio_from("Got it, your order 4821.") == "hit":
            break
        await asyncio.sleep(0.05)
    assert sorted(tts.asked) == ["Got it,", "One moment while I look up order"]
    assert renderer.first_audio_from("One moment while I look up order 8392.") == "hit"
    renderer.close()
    pool.shutdown()


@pytest.mark.parametrize("text, parts", [
    ("Got it, three two five.", ["Got it,", "three two five."]),
    ("Sorry, I did not get that. Please say it again.", ["Sorry,", "I did not get that. Please say it again."]),
    ("Please hold; an agent will be with you.", ["Please hold;", "an agent will be with you."]),
    ("Order 12,345 is shipped.", ["Order 12,345 is shipped."]),      # a number's comma has no space
    ("Welcome to Acme. This call may be recorded.", ["Welcome to Acme. This call may be recorded."]),
    ("Yes, ok.", ["Yes, ok."]),                                      # too little after the clause to gain
    # the words before the first figure: a template's fixed text, cached on its own
    ("One moment while I look up order 8392.", ["One moment while I look up order", "8392."]),
    ("I could not find order 55 21. Goodbye.", ["I could not find order", "55 21. Goodbye."]),
    ("Order 8392 is shipped.", ["Order 8392 is shipped."]),          # one word before the figure: whole
    ("Your total is 12. Thanks.", ["Your total is 12. Thanks."]),     # too little after the words to gain
    ("Goodbye. Call 555 1234 again.", ["Goodbye. Call 555 1234 again."]),  # the figure is not in sentence one
])
def test_a_first_sentence_is_spoken_from_its_opening_clause_or_the_words_before_a_figure(text, parts):
    from dialtone.speech_gateway.prompts import speech_parts

    assert speech_parts(text) == parts


async def test_the_opening_clause_is_rendered_and_sent_before_the_rest_of_its_sentence():
    """piper renders a whole sentence before yielding any of it: the clause comes as its own first
    chunk, shorter than the sentence would be, and the audio together is the prompt."""
    from dialtone.speech_gateway.prompts import PromptRenderer

    engine = build_tts(TtsConfig())
    pool = EnginePool("tts-clause", [engine])
    renderer = PromptRenderer(pool, engine, cache_entries=4)
    chunks = [c async for c in renderer.render("Got it, three two five.")]
    clause = b"".join(engine.synthesize("Got it,"))
    whole = b"".join(engine.synthesize("Got it, three two five."))
    # piper samples its durations (noise_w), so lengths agree only roughly
    assert len(chunks) == 2 and len(chunks[0]) < len(whole) // 2
    assert abs(len(chunks[0]) - len(clause)) < len(clause) // 3
    assert abs(sum(map(len, chunks)) - len(whole)) < len(whole) // 5
    pool.shutdown()


def test_long_numbers_are_spoken_digit_by_digit():
    from dialtone.speech_gateway.prompts import speakable

    assert speakable("Order 12345 shipped on day 12 of 2026.", 5) == "Order 1 2 3 4 5 shipped on day 12 of 2026."
    assert speakable("Call 555-0199.", 4) == "Call 5 5 5 0 1 9 9."
    assert speakable("Order 12345.", 0) == "Order 12345."


def test_split_model_is_reassembled_and_checked_against_its_pinned_checksum(tmp_path):
    import hashlib

    from dialtone.speech_gateway.engines.whisper_base import assemble

    one, two, extra = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2", tmp_path / "config.json"
    one.write_bytes(b"abc" * 1000)
    two.write_bytes(b"xyz" * 1000)
    extra.write_text("{}")
    good = hashlib.sha256(b"abc" * 1000 + b"xyz" * 1000).hexdigest()
    target = assemble([one, two], [extra], tmp_path / "out", good)
    assert target.read_bytes() == b"abc" * 1000 + b"xyz" * 1000 and (tmp_path / "out" / "config.json").is_file()
    with pytest.raises(ModelError, match="expected 00+: the parts are not the pinned release"):
        assemble([two, one], [extra], tmp_path / "bad", "0" * 64)
    assert not (tmp_path / "bad" / "model.bin").exists() and not (tmp_path / "bad" / "model.bin.partial").exists()
    with pytest.raises(ModelError, match="missing: pip install 'dialtone\\[speech-base\\]'"):
        assemble([tmp_path / "nope"], [], tmp_path / "x", good)


async def test_pool_stream_refused_when_full_raises_instead_of_hanging():
    gate = threading.Event()
    pool = EnginePool("full", [object()], max_queue=0)
    busy = asyncio.ensure_future(pool.run(lambda e: gate.wait(5)))
    await asyncio.sleep(0.05)

    async def consume():
        return [item async for item in pool.stream(lambda e: iter([1, 2]))]

    with pytest.raises(PoolBusy):
        await asyncio.wait_for(consume(), 5)
    gate.set()
    await busy
    assert await consume() == [1, 2]
    pool.shutdown()


def test_a_turn_longer_than_the_short_window_is_decoded_whole():
    """Short turns are encoded over a 20 s window; one past it takes Whisper's 30 s window and
    nothing said after 20 s is lost."""
    from dialtone.common.audio import pcm_to_float32, resample

    tts = build_tts(TtsConfig())
    asr = build_asr(AsrConfig())
    first = resample(b"".join(tts.synthesize("Please enter your password followed by the pound key.")),
                     tts.sample_rate, 16000)
    last = resample(b"".join(tts.synthesize("Your order will arrive on Tuesday.")), tts.sample_rate, 16000)
    # a pause that puts the last words past 20 s whatever the voice's pace this run (piper's varies)
    pause = bytes(2 * int(16000 * max(14.0, 21.5 - (2 * len(first) + len(last)) / 32000)))
    audio = first + pause + first + last
    assert len(audio) / 32000 > 21
    text = normalize(asr.transcribe(pcm_to_float32(audio)).text)
    assert "tuesday" in text and "password" in text
    short = normalize(asr.transcribe(pcm_to_float32(first)).text)
    # piper's voice varies run to run (its noise is random): "please" is sometimes heard as "place"
    assert "enter your password" in short and "tuesday" not in short


def test_hints_reach_whispers_prompt_and_leave_digit_strings_as_they_are():
    """A state's hints are Whisper's previous-text prompt (both decode windows); on human-read digit
    strings they change nothing (bench.asr_hints: 20/20 with and without)."""
    from tests.speech_gateway.corpus import as_float, digit_strings

    asr = build_asr(AsrConfig())
    hints = "talk to a pharmacist, pharmacist, agent, representative, human, person, operator, someone."
    for digits, pcm in digit_strings(4, seed=11):
        samples = as_float(pcm)
        assert digit_string(asr.transcribe(samples).text) == digits
        assert digit_string(asr.transcribe(samples, hints).text) == digits
        long = np.concatenate([samples, np.zeros(16000 * 21, dtype=np.float32)])   # the 30 s window's path
        assert digit_string(asr.transcribe(long, hints).text) == digits

"""The barge-in core: each policy, backchannels, DTMF; no sockets or models."""

from __future__ import annotations

from dialtone.speech_gateway.config import BargeInConfig
from dialtone.speech_gateway.core.barge_in import BargeIn, words_of
from dialtone.speech_gateway.core.events import Backchannel, BargeInMode, BargeInPolicy, Interrupt

SETTINGS = BargeInConfig(backchannel_max_ms=600, backchannel_max_words=2).settings()
ON = BargeInPolicy(BargeInMode.ON)


def arbiter(policy: BargeInPolicy = ON) -> BargeIn:
    b = BargeIn(SETTINGS)
    b.prompt_started("u1", policy)
    return b


def test_speech_without_a_prompt_is_not_judged():
    b = BargeIn(SETTINGS)
    assert b.speech_started() is None and not b.judging


def test_long_speech_interrupts_on_the_frame_crossing_the_threshold():
    """The verdict comes exactly when the speech reaches backchannel_max_ms, not a frame later."""
    b = arbiter()
    assert b.speech_started() is None
    assert b.speech_progress(580) is None
    assert b.speech_progress(600) == Interrupt("u1", "speech")
    assert b.playing is None


def test_short_backchannel_does_not_interrupt():
    b = arbiter()
    b.speech_started()
    b.speech_progress(400)
    assert b.transcript("Mm-hmm.", final=True) == Backchannel("u1", "backchannel_words")
    assert b.playing == "u1"


def test_short_real_word_interrupts_after_its_transcript():
    b = arbiter()
    b.speech_started()
    assert b.transcript("Agent!", final=True) == Interrupt("u1", "words")


def test_zero_threshold_interrupts_at_speech_start():
    b = BargeIn(BargeInConfig(backchannel_max_ms=0).settings())
    b.prompt_started("u1", ON)
    assert b.speech_started() == Interrupt("u1", "speech")


def test_off_and_dtmf_only_ignore_speech():
    assert arbiter(BargeInPolicy(BargeInMode.OFF)).speech_started() == Backchannel("u1", "policy_off")
    b = arbiter(BargeInPolicy(BargeInMode.DTMF_ONLY))
    assert b.speech_started() == Backchannel("u1", "dtmf_only")
    assert b.dtmf() == Interrupt("u1", "dtmf")


def test_off_ignores_dtmf_too():
    assert arbiter(BargeInPolicy(BargeInMode.OFF)).dtmf() is None


def test_after_words_waits_for_enough_words():
    b = arbiter(BargeInPolicy(BargeInMode.AFTER_WORDS, min_words=3))
    b.speech_started()
    assert b.speech_progress(5000) is None
    assert b.transcript("I want", final=False) is None
    assert b.transcript("I want to speak", final=False) == Interrupt("u1", "words")


def test_after_words_final_with_too_few_words_is_a_backchannel():
    b = arbiter(BargeInPolicy(BargeInMode.AFTER_WORDS, min_words=3))
    b.speech_started()
    assert b.transcript("no thanks", final=True) == Backchannel("u1", "too_few_words")


def test_prompt_ending_during_judgement_releases_the_speech():
    b = arbiter()
    b.speech_started()
    assert b.prompt_finished("u1") is True
    assert b.speech_progress(900) is None
    assert b.prompt_finished("u1") is False


def test_disabled_globally_never_interrupts():
    b = BargeIn(BargeInConfig(enabled=False).settings())
    b.prompt_started("u1", ON)
    assert b.speech_started() == Backchannel("u1", "policy_off")
    assert b.dtmf() is None


def test_words_of_keeps_hyphenated_backchannels():
    assert words_of("Mm-hmm, OK.") == ["mm-hmm", "ok"]


def test_an_on_prompt_is_held_while_speech_over_it_is_judged():
    b = arbiter()
    assert b.prompt_to_hold() is None          # nobody is talking yet
    b.speech_started()
    assert b.prompt_to_hold() == "u1"
    b.transcript("Mm-hmm.", final=True)
    assert b.prompt_to_hold() is None          # judged: nothing to hold any more


def test_only_on_prompts_are_held_and_the_setting_turns_it_off():
    for policy in (BargeInPolicy(BargeInMode.AFTER_WORDS, 2), BargeInPolicy(BargeInMode.OFF),
                   BargeInPolicy(BargeInMode.DTMF_ONLY)):
        b = arbiter(policy)
        b.speech_started()
        assert b.prompt_to_hold() is None, policy
    b = BargeIn(BargeInConfig(hold_on_speech=False).settings())
    b.prompt_started("u1", ON)
    b.speech_started()
    assert b.judging and b.prompt_to_hold() is None


def test_only_speech_judged_over_an_after_words_prompt_needs_partials():
    b = arbiter(BargeInPolicy(BargeInMode.AFTER_WORDS, 2))
    assert not b.needs_partials
    b.speech_started()
    assert b.needs_partials
    b.transcript("please enter", final=False)      # two words: interrupted, judging over
    assert not b.needs_partials
    on = arbiter()
    on.speech_started()
    assert not on.needs_partials                   # on: decided by duration or the final


def test_an_onset_holds_the_prompt_before_speech_is_decided_and_a_blip_lets_it_go():
    """OnsetHold on the segmenter's start window (webrtcvad's 200 ms, 60 % voiced to start): three voiced
    frames hold the prompt 60 ms in, where the segmenter decides only at the sixth; a blip of three
    frames that never becomes speech is released once the window has no voiced frame left."""
    from dialtone.speech_gateway.core.barge_in import OnsetHold
    from dialtone.speech_gateway.core.segmenter import Segmenter, SegmenterSettings

    settings = SegmenterSettings(frame_ms=20, start_window_ms=200, start_ratio=0.6, stop_ms=500,
                                 speculative_ms=80, max_utterance_ms=15000, early_stop_ms=0)

    def run(voicing: list[bool], hold_after_ms: int = 60) -> list[tuple[int, str]]:
        segmenter, hold, out = Segmenter(settings), OnsetHold(hold_after_ms), []
        for i, voiced in enumerate(voicing):
            for event in segmenter.feed(voiced, i * 20):
                out.append((i * 20, type(event).__name__))
            step = hold.frame(segmenter.onset_voiced_ms, segmenter.in_speech, holdable=True)
            if step:
                out.append((i * 20, step))
        return out

    assert run([True] * 8) == [(40, "hold"), (100, "SpeechStarted")]
    # the default (100 ms) still holds a frame before the segmenter decides, more when voicing is patchy
    assert run([True] * 8, BargeInConfig().hold_after_ms) == [(80, "hold"), (100, "SpeechStarted")]
    patchy = [True, True, False, True, True, False, True, False, True, True]
    assert run(patchy, BargeInConfig().hold_after_ms) == [(120, "hold"), (160, "SpeechStarted")]
    assert run([True] * 3 + [False] * 12) == [(40, "hold"), (240, "release")]
    assert run([True, False, True, False, False]) == []   # two voiced frames: no hold
    assert OnsetHold(0).frame(200, False, True) is None    # off: the hold comes with the start of speech
    assert OnsetHold(60).frame(200, False, holdable=False) is None


def test_only_an_on_prompt_not_yet_judged_is_holdable():
    barge = BargeIn(SETTINGS)
    assert barge.holdable() is None
    barge.prompt_started("p1", BargeInPolicy(BargeInMode.AFTER_WORDS, 2))
    assert barge.holdable() is None
    barge.prompt_started("p2", BargeInPolicy(BargeInMode.ON))
    assert barge.holdable() == "p2"
    barge.speech_started()
    assert barge.holdable() is None   # judged now: the verdict owns the hold

"""The eager-reply core on event sequences: a reply rendered ahead is committed only when the turn ends
with the words it answered, and dropped when the caller talks on or ends with other words."""

from __future__ import annotations

from dialtone.speech_gateway.core.eager import DropAhead, EagerOutcome, EagerReplies, RenderAhead

REPLY = "One moment while I look up order 8 3 9 2."


def test_committed_when_the_turn_ends_with_the_same_words():
    eager = EagerReplies()
    assert eager.provisional(7, "8392") == []
    assert eager.prepared(7, [REPLY]) == [RenderAhead((REPLY,))]
    assert eager.turn_ended("8392") == []
    assert eager.said(REPLY) == (EagerOutcome.COMMITTED, [])
    assert eager.rendering == ()


def test_a_say_before_the_turn_ends_is_not_the_eager_reply():
    """A prompt the dialog says while the caller's pause is still open (a timer's) commits nothing."""
    eager = EagerReplies()
    eager.provisional(7, "8392")
    eager.prepared(7, [REPLY])
    assert eager.said(REPLY) == (None, [])
    assert eager.rendering == (REPLY,)


def test_cancelled_when_the_caller_talks_on():
    """ "8 3 ... 9 2": the pause's reply is dropped as soon as the caller goes on."""
    eager = EagerReplies()
    eager.provisional(7, "83")
    eager.prepared(7, ["Sorry, I need four digits."])
    assert eager.talked_on() == [DropAhead(("Sorry, I need four digits.",), EagerOutcome.CANCELLED)]
    assert eager.turn_ended("8392") == []
    assert eager.said(REPLY) == (None, [])


def test_cancelled_when_the_turn_ends_with_other_words():
    eager = EagerReplies()
    eager.provisional(7, "8392")
    eager.prepared(7, [REPLY])
    assert eager.turn_ended("8393") == [DropAhead((REPLY,), EagerOutcome.CANCELLED)]
    assert eager.said("One moment while I look up order 8 3 9 3.") == (None, [])


def test_an_answer_to_a_stale_pause_is_not_rendered():
    """The runtime's answer to a pause the caller talked through (or to an older pause) renders nothing."""
    eager = EagerReplies()
    eager.provisional(7, "83")
    eager.talked_on()
    assert eager.prepared(7, ["Sorry?"]) == []
    eager.provisional(9, "8392")
    assert eager.prepared(7, ["Sorry?"]) == []
    assert eager.prepared(9, [REPLY]) == [RenderAhead((REPLY,))]


def test_an_answer_after_the_turn_ended_with_the_same_words_still_commits():
    eager = EagerReplies()
    eager.provisional(7, "8392")
    eager.turn_ended("8392")
    assert eager.prepared(7, [REPLY]) == [RenderAhead((REPLY,))]
    assert eager.said(REPLY) == (EagerOutcome.COMMITTED, [])


def test_an_answer_after_the_turn_ended_with_other_words_is_not_rendered():
    eager = EagerReplies()
    eager.provisional(7, "8392")
    eager.turn_ended("8393")
    assert eager.prepared(7, [REPLY]) == []


def test_unused_when_the_dialog_says_something_else():
    """Same words, but the dialog answered otherwise (a timer fired between): the rest is dropped."""
    second = "Is there anything else?"
    eager = EagerReplies()
    eager.provisional(7, "8392")
    eager.prepared(7, [REPLY, second])
    eager.turn_ended("8392")
    assert eager.said("Are you still there?") == (None, [DropAhead((REPLY, second), EagerOutcome.UNUSED)])
    assert eager.rendering == ()


def test_a_reply_of_several_prompts_commits_each():
    second = "Is there anything else?"
    eager = EagerReplies()
    eager.provisional(7, "8392")
    eager.prepared(7, [REPLY, second])
    eager.turn_ended("8392")
    assert eager.said(REPLY) == (EagerOutcome.COMMITTED, [])
    assert eager.rendering == (second,)
    assert eager.said(second) == (EagerOutcome.COMMITTED, [])
    assert eager.rendering == ()


def test_a_newer_pause_replaces_the_older_reply():
    eager = EagerReplies()
    eager.provisional(7, "yes")
    eager.prepared(7, ["Great."])
    assert eager.provisional(9, "yes please") == [DropAhead(("Great.",), EagerOutcome.CANCELLED)]

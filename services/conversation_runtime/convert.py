"""The one place protobuf meets the dialog core: SpeechEvent -> domain event, Action -> DialogAction."""

from __future__ import annotations

import math

from dialtone.common.errors import InvalidArgument
from dialtone.conversation_runtime.core import events as ev
from dialtone.v1 import common_pb2
from dialtone.v1 import conversation_runtime_pb2 as pb

_DTMF_KEYS = frozenset("0123456789*#ABCD")
_BARGE_IN = {"on": common_pb2.BARGE_IN_MODE_ON, "off": common_pb2.BARGE_IN_MODE_OFF,
             "dtmf_only": common_pb2.BARGE_IN_MODE_DTMF_ONLY, "after_words": common_pb2.BARGE_IN_MODE_AFTER_WORDS}
MAX_TEXT = 4096


def call_info(message: pb.CallStarted) -> ev.CallInfo:
    call = message.call
    return ev.CallInfo(caller=call.caller, callee=call.callee,
                       headers=tuple((h.name, h.value) for h in call.headers), dialog=call.dialog,
                       call_id=call.call_id)


def to_event(message: pb.SpeechEvent) -> ev.Event | None:
    """The domain event of a (non-first) stream message; None for ones the dialog ignores.

    Raises InvalidArgument for a malformed message.
    """
    kind = message.WhichOneof("payload")
    if kind is None:
        raise InvalidArgument(f"SpeechEvent seq {message.seq}: no payload")
    if kind in ("call_started", "resume"):
        raise InvalidArgument(f"SpeechEvent seq {message.seq}: {kind} is only allowed as the first message")
    if kind == "transcript":
        transcript = message.transcript
        if not math.isfinite(transcript.confidence) or not 0.0 <= transcript.confidence <= 1.0:
            raise InvalidArgument(f"SpeechEvent seq {message.seq}: transcript confidence must be 0..1, "
                                  f"got {transcript.confidence}")
        if len(transcript.text) > MAX_TEXT:
            raise InvalidArgument(f"SpeechEvent seq {message.seq}: transcript longer than {MAX_TEXT} characters")
        return ev.SpeechResult(transcript.text, transcript.confidence) if transcript.is_final else None
    if kind == "dtmf":
        if message.dtmf.digit not in _DTMF_KEYS:
            raise InvalidArgument(f"SpeechEvent seq {message.seq}: dtmf digit {message.dtmf.digit[:8]!r} is not "
                                  "one of 0-9, *, #, A-D")
        return ev.DtmfPressed(message.dtmf.digit)
    if kind == "speech_started":
        return ev.SpeechStarted()
    if kind == "speech_ended":
        return ev.SpeechEnded()
    if kind == "playback_started":
        return ev.PlaybackStarted(message.playback_started.utterance_id)
    if kind == "playback_finished":
        finished = message.playback_finished
        return ev.PlaybackFinished(finished.utterance_id, finished.interrupted, finished.played_ms)
    if kind == "transfer_result":
        result = message.transfer_result
        return ev.TransferResult(result.target_uri, result.ok, result.sip_status)
    if kind == "call_ended":
        return ev.CallerHungUp(message.call_ended.reason or "caller")
    raise InvalidArgument(f"SpeechEvent seq {message.seq}: unsupported payload {kind}")


def to_message(session_id: str, action: ev.Action) -> pb.DialogAction | None:
    """The stream message of a dialog action (None for ``call``, which goes to the gateway)."""
    out = pb.DialogAction(session_id=session_id, seq=action.seq, idempotency_key=action.key)
    data = action.data
    if action.kind == "say":
        out.say.CopyFrom(pb.Say(utterance_id=action.key, text=data["text"], voice=data.get("voice", ""),
                                barge_in=_barge_in(data)))
    elif action.kind == "play":
        out.play.CopyFrom(pb.Play(utterance_id=action.key, audio_uri=data["audio_uri"], barge_in=_barge_in(data)))
    elif action.kind == "transfer":
        out.transfer.CopyFrom(common_pb2.Transfer(target_uri=data["target_uri"]))
    elif action.kind == "hangup":
        out.hangup.CopyFrom(common_pb2.Hangup(reason=data["reason"]))
    elif action.kind == "state_changed":
        out.state_changed.CopyFrom(pb.StateChanged(dialog=data["dialog"], state=data["state"]))
    else:
        return None
    return out


def _barge_in(data: dict) -> common_pb2.BargeInPolicy:
    policy = data.get("barge_in") or {}
    return common_pb2.BargeInPolicy(mode=_BARGE_IN.get(policy.get("mode", "on"), common_pb2.BARGE_IN_MODE_ON),
                                    min_words=int(policy.get("min_words", 0)))

"""The one place protobuf meets the dialog core: SpeechEvent -> domain event, Action -> DialogAction.

Every string field of a SpeechEvent is refused by its size (INVALID_ARGUMENT) before anything
else is done with it: before a dialog is looked up by name, before a session is stored, before a
message quotes it. The limits are the speech gateway's (``dialtone.speech_gateway.validation``)
or wider, so that whatever the gateway forwards is accepted here; docs/security.md lists them.
"""

from __future__ import annotations

import json
import math

from dialtone.common.call_limits import (
    DTMF_KEYS,
    MAX_CALL_ID,
    MAX_DIALOG_NAME,
    MAX_HEADER_CHARS,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_REASON,
    MAX_URI,
    MAX_UTTERANCE_ID,
)
from dialtone.common.errors import InvalidArgument, quote_prefix
from dialtone.common.grpc_validation import require_max_length
from dialtone.conversation_runtime.core import events as ev
from dialtone.v1 import common_pb2
from dialtone.v1 import conversation_runtime_pb2 as pb

_BARGE_IN = {"on": common_pb2.BARGE_IN_MODE_ON, "off": common_pb2.BARGE_IN_MODE_OFF,
             "dtmf_only": common_pb2.BARGE_IN_MODE_DTMF_ONLY, "after_words": common_pb2.BARGE_IN_MODE_AFTER_WORDS}
MAX_TEXT = 4096              # a transcript


def call_info(message: pb.CallStarted) -> ev.CallInfo:
    """The call of a CallStarted; raises InvalidArgument when a field is over its limit."""
    call = message.call
    require_max_length(call.dialog, MAX_DIALOG_NAME, "CallStarted: CallInfo.dialog")
    require_max_length(call.caller, MAX_URI, "CallStarted: CallInfo.caller")
    require_max_length(call.callee, MAX_URI, "CallStarted: CallInfo.callee")
    require_max_length(call.call_id, MAX_CALL_ID, "CallStarted: CallInfo.call_id")
    if len(call.headers) > MAX_HEADERS:
        raise InvalidArgument(f"CallStarted: {len(call.headers)} headers; the limit is {MAX_HEADERS}")
    total = 0
    for header in call.headers:
        require_max_length(header.name, MAX_HEADER_NAME, "CallStarted: a header name")
        require_max_length(header.value, MAX_HEADER_VALUE, f"CallStarted: header {quote_prefix(header.name)}")
        total += len(header.name) + len(header.value)
    if total > MAX_HEADER_CHARS:
        raise InvalidArgument(f"CallStarted: headers of {total} characters in all; the limit is {MAX_HEADER_CHARS}")
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
        require_max_length(transcript.text, MAX_TEXT, f"SpeechEvent seq {message.seq}: transcript text")
        if transcript.is_final:
            return ev.SpeechResult(transcript.text, transcript.confidence)
        return ev.ProvisionalSpeech(transcript.text, transcript.confidence) if transcript.provisional else None
    if kind == "dtmf":
        if message.dtmf.digit not in DTMF_KEYS:
            raise InvalidArgument(f"SpeechEvent seq {message.seq}: dtmf digit {quote_prefix(message.dtmf.digit, 8)} "
                                  "is not one of 0-9, *, #, A-D")
        return ev.DtmfPressed(message.dtmf.digit)
    if kind == "speech_started":
        require_max_length(message.speech_started.interrupted_utterance_id, MAX_UTTERANCE_ID,
                           f"SpeechEvent seq {message.seq}: speech_started.interrupted_utterance_id")
        return ev.SpeechStarted()
    if kind == "speech_ended":
        return ev.SpeechEnded()
    if kind == "playback_started":
        require_max_length(message.playback_started.utterance_id, MAX_UTTERANCE_ID,
                           f"SpeechEvent seq {message.seq}: playback_started.utterance_id")
        return ev.PlaybackStarted(message.playback_started.utterance_id)
    if kind == "playback_finished":
        finished = message.playback_finished
        require_max_length(finished.utterance_id, MAX_UTTERANCE_ID,
                           f"SpeechEvent seq {message.seq}: playback_finished.utterance_id")
        return ev.PlaybackFinished(finished.utterance_id, finished.interrupted, finished.played_ms)
    if kind == "transfer_result":
        result = message.transfer_result
        require_max_length(result.target_uri, MAX_URI, f"SpeechEvent seq {message.seq}: transfer_result.target_uri")
        require_max_length(result.reason, MAX_REASON, f"SpeechEvent seq {message.seq}: transfer_result.reason")
        return ev.TransferResult(result.target_uri, result.ok, result.sip_status)
    if kind == "call_ended":
        require_max_length(message.call_ended.reason, MAX_REASON, f"SpeechEvent seq {message.seq}: call_ended.reason")
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
        changed = pb.StateChanged(dialog=data["dialog"], state=data["state"])
        expect = data.get("expect")
        if expect:
            changed.expect.CopyFrom(pb.Expectation(
                entity=expect.get("entity", ""), hints=expect.get("hints", ""),
                constraints_json=json.dumps(expect.get("constraints") or {}) if expect.get("entity") else ""))
        out.state_changed.CopyFrom(changed)
    else:
        return None
    return out


def prepare_reply(session_id: str, texts: list[str], for_event_seq: int = 0) -> pb.DialogAction:
    """Texts to render ahead (seq 0: not an action a resumed stream re-sends)."""
    return pb.DialogAction(session_id=session_id, prepare_reply=pb.PrepareReply(texts=texts,
                                                                               for_event_seq=for_event_seq))


def _barge_in(data: dict) -> common_pb2.BargeInPolicy:
    policy = data.get("barge_in") or {}
    return common_pb2.BargeInPolicy(mode=_BARGE_IN.get(policy.get("mode", "on"), common_pb2.BARGE_IN_MODE_ON),
                                    min_words=int(policy.get("min_words", 0)))

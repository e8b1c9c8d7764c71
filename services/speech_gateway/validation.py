"""What the speech gateway accepts on StreamCall, checked before anything reaches the runtime.

A message the runtime would refuse (a DTMF key that is not one, a megabyte of dialog name)
is refused here, to the media side, with INVALID_ARGUMENT: forwarded, the runtime's refusal
would end the caller's call, and the one who sent it would never learn why. Sizes are
checked before anything else is done with a field (every check here is a length or a set
lookup), and error messages quote at most a short prefix of the value.
"""

from __future__ import annotations

from dialtone.common.audio import FRAME_BYTES, SAMPLE_RATE
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
from dialtone.common.grpc_validation import require_max_length, require_session_id
from dialtone.v1 import common_pb2 as cpb
from dialtone.v1 import speech_gateway_pb2 as pb

PLAYBACK_RATES = (0, 8000, 16000, 22050, 24000, 32000, 44100, 48000)
# A frame's call time: far beyond any call (a dialog session lasts ten minutes), and small enough
# that every duration computed from it fits the uint32 milliseconds of the runtime's messages.
MAX_CALL_TIME_MS = 24 * 3600 * 1000


def check_call_start(message: pb.MediaUplink) -> None:
    """The first message of a stream: a valid session id and a CallStart within bounds."""
    require_session_id(message.session_id, "MediaUplink")
    if message.WhichOneof("payload") != "call_start":
        raise InvalidArgument("MediaUplink: a stream must begin with call_start, "
                              f"got {message.WhichOneof('payload') or 'an empty message'}")
    start = message.call_start
    if start.sample_rate not in (0, SAMPLE_RATE):
        raise InvalidArgument(f"CallStart: sample_rate must be {SAMPLE_RATE} (got {start.sample_rate})")
    if start.playback_sample_rate not in PLAYBACK_RATES:
        raise InvalidArgument(f"CallStart: playback_sample_rate {start.playback_sample_rate} is not one of "
                              + ", ".join(str(r) for r in PLAYBACK_RATES))
    check_call_info(start.call)


def check_call_info(call: cpb.CallInfo) -> None:
    require_max_length(call.dialog, MAX_DIALOG_NAME, "CallInfo.dialog")
    require_max_length(call.caller, MAX_URI, "CallInfo.caller")
    require_max_length(call.callee, MAX_URI, "CallInfo.callee")
    require_max_length(call.call_id, MAX_CALL_ID, "CallInfo.call_id")
    if len(call.headers) > MAX_HEADERS:
        raise InvalidArgument(f"CallInfo.headers: {len(call.headers)} headers; the limit is {MAX_HEADERS}")
    total = 0
    for header in call.headers:
        require_max_length(header.name, MAX_HEADER_NAME, "CallInfo.headers name")
        require_max_length(header.value, MAX_HEADER_VALUE, f"CallInfo.headers {quote_prefix(header.name)} value")
        total += len(header.name) + len(header.value)
    if total > MAX_HEADER_CHARS:
        raise InvalidArgument(f"CallInfo.headers: {total} characters in all; the limit is {MAX_HEADER_CHARS}")


def check_audio(frame: pb.AudioFrame) -> None:
    if len(frame.pcm) != FRAME_BYTES:
        raise InvalidArgument(f"AudioFrame: pcm must be {FRAME_BYTES} bytes (20 ms of 16 kHz s16le), "
                              f"got {len(frame.pcm)}")
    if frame.timestamp_ms > MAX_CALL_TIME_MS:
        raise InvalidArgument(f"AudioFrame: timestamp_ms {frame.timestamp_ms} is more than 24 hours of call time")


def check_dtmf(dtmf: cpb.Dtmf) -> None:
    if dtmf.digit not in DTMF_KEYS:
        raise InvalidArgument(f"Dtmf: digit {quote_prefix(dtmf.digit, 8)} is not one of 0-9, *, #, A-D")


def check_playback_started(started: cpb.PlaybackStarted) -> None:
    require_max_length(started.utterance_id, MAX_UTTERANCE_ID, "PlaybackStarted.utterance_id")


def check_playback_finished(finished: cpb.PlaybackFinished) -> None:
    require_max_length(finished.utterance_id, MAX_UTTERANCE_ID, "PlaybackFinished.utterance_id")


def check_transfer_result(result: cpb.TransferResult) -> None:
    require_max_length(result.target_uri, MAX_URI, "TransferResult.target_uri")
    require_max_length(result.reason, MAX_REASON, "TransferResult.reason")


def check_call_end(end: pb.CallEnd) -> None:
    require_max_length(end.reason, MAX_REASON, "CallEnd.reason")


_CHECKS = {
    "audio": check_audio,
    "dtmf": check_dtmf,
    "playback_started": check_playback_started,
    "playback_finished": check_playback_finished,
    "transfer_result": check_transfer_result,
    "call_end": check_call_end,
}


def check_uplink(message: pb.MediaUplink, kind: str | None) -> None:
    """A message after the first (``kind`` is its payload's name); InvalidArgument if it may not be forwarded."""
    check = _CHECKS.get(kind) if kind is not None else None
    if check is None:
        if kind == "call_start":
            raise InvalidArgument("MediaUplink: call_start may only be the first message of a stream")
        raise InvalidArgument("MediaUplink: message has no payload")
    check(getattr(message, kind))

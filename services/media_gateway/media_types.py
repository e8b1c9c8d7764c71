"""Value types that cross between SIP signalling (sip/, sdp) and RTP media (media/).

Signalling negotiates a ``NegotiatedMedia`` from the SDP offer/answer; media opens a
session for it and reports ``DtmfDigit`` and ``PlaybackReport`` back. Frozen
dataclasses, no I/O, no protobuf.
"""

from __future__ import annotations

import dataclasses
import enum


class Direction(enum.Enum):
    """SDP media direction, from our side (RFC 3264)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def we_send(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def we_receive(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)


class SrtpPolicy(enum.StrEnum):
    """Whether RTP calls use SRTP with SDES keys (RFC 4568): never, when the peer offers it, or always
    (a plain offer gets 488). SDES keys travel in the SDP, so they are only ever taken over TLS."""

    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclasses.dataclass(frozen=True)
class SrtpKeys:
    """One SRTP stream pair: the crypto suite, the a=crypto tag, and the 30-byte master key+salt each way."""

    suite: str          # "AES_CM_128_HMAC_SHA1_80" | "AES_CM_128_HMAC_SHA1_32"
    tag: int
    local_key: bytes    # what we encrypt with (sent in our SDP)
    remote_key: bytes   # what the peer encrypts with (from its SDP)


@dataclasses.dataclass(frozen=True)
class NegotiatedMedia:
    """The audio stream both sides agreed on."""

    codec: str                       # "PCMU", "PCMA", "opus"
    payload_type: int
    clock_rate: int                  # 8000 for G.711, 48000 for Opus
    channels: int                    # 1, or 2 for opus/48000/2 (we send mono content)
    ptime_ms: int                    # packetisation the peer asked for (default 20)
    telephone_event_pt: int | None   # RFC 4733 payload type, None when not negotiated
    remote_host: str                 # c= address of the peer (latched to the real source later)
    remote_port: int
    direction: Direction             # our direction in the answer
    srtp: SrtpKeys | None = None     # SDES-keyed SRTP, or plain RTP


class CallState(enum.StrEnum):
    """Where a call stands, whatever its transport (what ListCalls and GET /v1/calls show)."""

    RINGING = "ringing"     # SIP: INVITE received or sent, not answered; WebRTC: ICE/DTLS connecting
    ACTIVE = "active"
    HELD = "held"           # SIP re-INVITE put the media on hold
    ENDING = "ending"       # hung up, releasing media and the speech stream


class CallEndReason(enum.StrEnum):
    """Why a call ended, as CallEnd.reason tells the speech side (and the runtime, the dialog's events and
    the call records). A dialog's Hangup may carry a reason of its own, so ``end_reason`` is any string;
    these are the gateway's."""

    CALLER_HANGUP = "caller_hangup"
    DIALOG_HANGUP = "dialog_hangup"         # a Hangup from the dialog that gave no reason
    OPERATOR_HANGUP = "operator_hangup"     # the control API or the softphone's DELETE
    SHUTDOWN = "shutdown"
    TRANSFER = "transfer"                   # the far end accepted the REFER
    REJECTED = "rejected"                   # we refused the INVITE
    SPEECH_UNAVAILABLE = "speech_unavailable"   # no speech gateway reachable in time
    SPEECH_REFUSED = "speech_refused"       # the speech gateway refused the call's stream
    BAD_ANSWER = "bad_answer"               # an outbound call answered with SDP we cannot use
    MEDIA_ERROR = "media_error"             # RTP media could not start
    MEDIA_FAILED = "media_failed"           # WebRTC: ICE/DTLS failed
    CONNECT_TIMEOUT = "connect_timeout"     # WebRTC: ICE/DTLS did not connect in time
    # how a SIP leg ends (sip_leg): CANCEL before the answer, no answer to ours, a BYE from the far
    # end (remote_hangup: each side names it, the gateway caller_hangup), sippy's timeout
    CANCELLED = "cancelled"
    NO_ANSWER = "no_answer"
    REMOTE_HANGUP = "remote_hangup"
    TIMEOUT = "timeout"


class DtmfMode(enum.Enum):
    RFC4733 = "rfc4733"
    SIP_INFO = "sip_info"
    INBAND = "inband"
    WEBRTC = "webrtc"


@dataclasses.dataclass(frozen=True)
class DtmfDigit:
    digit: str          # 0-9 * # A-D
    duration_ms: int
    mode: DtmfMode
    timestamp_ms: int   # call-relative


@dataclasses.dataclass(frozen=True)
class PlaybackReport:
    """Start or end of one utterance on the wire."""

    utterance_id: str
    finished: bool      # False: first frame sent; True: last frame sent or stopped
    played_ms: int
    total_ms: int
    interrupted: bool
    timestamp_ms: int

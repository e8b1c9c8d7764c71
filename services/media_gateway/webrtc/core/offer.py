"""Check a browser's SDP offer before any peer connection exists (pure, no I/O).

aiortc answers almost anything: garbage SDP becomes an empty session and an offer
without audio an answer without audio. So the HTTP layer runs ``check_offer`` first and
turns its ``BadOffer`` into a 400; a refused offer never allocates sockets.
"""

from __future__ import annotations

import dataclasses
import re

from aiortc.sdp import SessionDescription
from dialtone.media_gateway.webrtc.errors import BadOffer

MAX_OFFER_BYTES = 64 * 1024
# Codecs aiortc can decode and encode for audio, in our order of preference.
ACCEPTED_CODECS = ("opus", "PCMU", "PCMA")
_SDP_LINE = re.compile(r"^[a-z]=")


@dataclasses.dataclass(frozen=True)
class OfferSummary:
    codecs: tuple[str, ...]        # accepted codecs the offer carries, ours first
    offered_codecs: tuple[str, ...]
    has_data_channel: bool         # the page's keypad channel (DTMF)
    audio_direction: str


def check_offer(sdp: object) -> OfferSummary:
    """Return what the offer carries, or raise ``BadOffer`` saying why it can't be answered."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise BadOffer("offer: 'sdp' must be a non-empty string")
    if len(sdp.encode()) > MAX_OFFER_BYTES:
        raise BadOffer(f"offer: SDP is larger than {MAX_OFFER_BYTES} bytes")
    lines = [line for line in sdp.replace("\r\n", "\n").split("\n") if line]
    if not lines or lines[0].strip() != "v=0":
        raise BadOffer("offer: not an SDP session description (it must start with 'v=0')")
    bad = next((line for line in lines if not _SDP_LINE.match(line)), None)
    if bad is not None:
        raise BadOffer(f"offer: malformed SDP line {bad[:60]!r} (expected '<letter>=<value>')")
    try:
        parsed = SessionDescription.parse(sdp)
    # aiortc's parser reports bad input with ValueError, and with bare asserts and
    # unpacking errors on some lines; all of them mean "this SDP is malformed".
    except (ValueError, AssertionError, IndexError, KeyError, TypeError) as exc:
        raise BadOffer(f"offer: malformed SDP ({type(exc).__name__}: {exc or 'bad line'})") from exc

    audio = [m for m in parsed.media if m.kind == "audio"]
    if not audio:
        kinds = ", ".join(m.kind for m in parsed.media) or "none"
        raise BadOffer(f"offer: no audio m-line (media in the offer: {kinds})")
    media = audio[0]
    if media.port == 0:
        raise BadOffer("offer: the audio m-line is disabled (port 0)")
    if "SAVPF" not in media.profile and "SAVP" not in media.profile:
        raise BadOffer(f"offer: audio profile {media.profile!r} is not DTLS-SRTP (UDP/TLS/RTP/SAVPF)")
    if media.dtls is None or not media.dtls.fingerprints:
        raise BadOffer("offer: no DTLS fingerprint (a=fingerprint); plain RTP is not accepted")
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise BadOffer("offer: no ICE credentials (a=ice-ufrag / a=ice-pwd)")

    offered = tuple(f"{c.mimeType.split('/', 1)[1]}/{c.clockRate}" for c in media.rtp.codecs)
    offered_names = {c.mimeType.split("/", 1)[1].lower() for c in media.rtp.codecs}
    common = tuple(name for name in ACCEPTED_CODECS if name.lower() in offered_names)
    if not common:
        raise BadOffer("offer: no common audio codec (offered: %s; accepted: opus/48000, PCMU/8000, PCMA/8000)"
                       % (", ".join(offered) or "none"))
    return OfferSummary(
        codecs=common,
        offered_codecs=offered,
        has_data_channel=any(m.kind == "application" for m in parsed.media),
        audio_direction=media.direction or "sendrecv",
    )

"""Offer checks against an SDP offer captured from Chromium 156 (tests/webrtc/fixtures). Pure, no sockets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dialtone.media_gateway.webrtc.core.offer import MAX_OFFER_BYTES, check_offer
from dialtone.media_gateway.webrtc.errors import BadOffer

CHROMIUM_OFFER = (Path(__file__).parent / "fixtures" / "chromium_offer.sdp").read_bytes().decode()  # keeps CRLF


def without_codecs(sdp: str, keep: tuple[str, ...]) -> str:
    """The offer with only the payload types whose rtpmap names are in ``keep``."""
    pts = re.findall(r"a=rtpmap:(\d+) (\S+?)/", sdp)
    kept = [pt for pt, name in pts if name in keep]
    out = []
    for line in sdp.split("\r\n"):
        match = re.match(r"a=(?:rtpmap|fmtp|rtcp-fb):(\d+)", line)
        if match and match.group(1) not in kept:
            continue
        if line.startswith("m=audio"):
            line = " ".join(line.split(" ")[:3] + kept)
        out.append(line)
    return "\r\n".join(out)


def only_data_channel(sdp: str) -> str:
    head, audio_and_rest = sdp.split("m=audio", 1)
    application = "m=application" + audio_and_rest.split("m=application", 1)[1]
    return head.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 1") + application


def test_chromium_offer_is_accepted():
    """Chromium's offer: Opus preferred, G.711 as fallback, the keypad data channel present."""
    summary = check_offer(CHROMIUM_OFFER)
    assert summary.codecs == ("opus", "PCMU", "PCMA")
    assert summary.offered_codecs[:3] == ("opus/48000", "red/48000", "G722/8000")
    assert summary.has_data_channel is True
    assert summary.audio_direction == "sendrecv"


def test_g711_only_offer_is_accepted():
    """An offer with PCMU alone still has a common codec."""
    assert check_offer(without_codecs(CHROMIUM_OFFER, ("PCMU",))).codecs == ("PCMU",)


@pytest.mark.parametrize("sdp, message", [
    (None, "'sdp' must be a non-empty string"),
    ("", "'sdp' must be a non-empty string"),
    (42, "'sdp' must be a non-empty string"),
    ("garbage", "must start with 'v=0'"),
    ("v=0\r\nthis is not sdp\r\n", "malformed SDP line 'this is not sdp'"),
    ("v=0\r\nm=audio x RTP 0\r\n", "malformed SDP"),
    ("v=0\r\n" + "a=x\r\n" * (MAX_OFFER_BYTES // 5), "larger than"),
    (only_data_channel(CHROMIUM_OFFER), "no audio m-line \\(media in the offer: application\\)"),
    (without_codecs(CHROMIUM_OFFER, ("G722", "CN")),
     "no common audio codec \\(offered: G722/8000, CN/8000; accepted: opus/48000"),
    (CHROMIUM_OFFER.replace("m=audio 38938", "m=audio 0"), "disabled \\(port 0\\)"),
    (CHROMIUM_OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), "not DTLS-SRTP"),
    ("\r\n".join(line for line in CHROMIUM_OFFER.split("\r\n") if not line.startswith("a=fingerprint")),
     "no DTLS fingerprint"),
    ("\r\n".join(line for line in CHROMIUM_OFFER.split("\r\n") if not line.startswith("a=ice-")),
     "no ICE credentials"),
])
def test_bad_offers_are_refused_with_a_reason(sdp, message):
    """Each kind of unusable offer raises BadOffer (HTTP 400) with a message that says what is wrong."""
    with pytest.raises(BadOffer, match=message) as caught:
        check_offer(sdp)
    assert caught.value.http_status == 400

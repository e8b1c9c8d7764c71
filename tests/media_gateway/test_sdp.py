"""SDP offer/answer (sans-I/O): parse, negotiate by preference, RFC 3264 directions, 488."""

from __future__ import annotations

import base64

import pytest
from dialtone.media_gateway.media_types import Direction, SrtpKeys, SrtpPolicy
from dialtone.media_gateway.sdp import (
    SdpError,
    SdpNotAcceptable,
    accept_answer,
    build_answer,
    build_offer,
    negotiate_answer,
    parse_sdp,
)

PREFS = ("PCMU", "PCMA", "opus")


def offer(m: str, *attrs: str, c: str = "c=IN IP4 10.0.0.5", session_attrs: tuple[str, ...] = ()) -> str:
    lines = ["v=0", "o=alice 2890844526 2890844526 IN IP4 10.0.0.5", "s=-", c, "t=0 0", *session_attrs, m, *attrs]
    return "\r\n".join(lines) + "\r\n"


SIPP_PCMU = offer("m=audio 6000 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
                  "a=fmtp:101 0-15")

NEGOTIATION_TABLE = [
    # (name, offer, preference, codec, pt, te_pt, ptime, direction)
    ("pcmu static, no rtpmap", offer("m=audio 6000 RTP/AVP 0"), PREFS, "PCMU", 0, None, 20, Direction.SENDRECV),
    ("sipp pcmu + te", SIPP_PCMU, PREFS, "PCMU", 0, 101, 20, Direction.SENDRECV),
    ("pcma only", offer("m=audio 6000 RTP/AVP 8"), PREFS, "PCMA", 8, None, 20, Direction.SENDRECV),
    ("our order wins over theirs", offer("m=audio 6000 RTP/AVP 8 0"), PREFS, "PCMU", 0, None, 20,
     Direction.SENDRECV),
    ("pcma preferred by config", offer("m=audio 6000 RTP/AVP 0 8"), ("PCMA", "PCMU"), "PCMA", 8, None, 20,
     Direction.SENDRECV),
    ("opus dynamic pt with 48k te", offer("m=audio 6000 RTP/AVP 96 97 0", "a=rtpmap:96 opus/48000/2",
                                          "a=rtpmap:97 telephone-event/48000", "a=ptime:20"),
     ("opus", "PCMU"), "opus", 96, 97, 20, Direction.SENDRECV),
    ("te at wrong rate ignored", offer("m=audio 6000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/48000"),
     PREFS, "PCMU", 0, None, 20, Direction.SENDRECV),
    ("ptime 30 kept", offer("m=audio 6000 RTP/AVP 8", "a=ptime:30"), PREFS, "PCMA", 8, None, 30,
     Direction.SENDRECV),
    ("hold sendonly -> recvonly", offer("m=audio 6000 RTP/AVP 0", "a=sendonly"), PREFS, "PCMU", 0, None, 20,
     Direction.RECVONLY),
    ("inactive -> inactive", offer("m=audio 6000 RTP/AVP 0", "a=inactive"), PREFS, "PCMU", 0, None, 20,
     Direction.INACTIVE),
    ("recvonly -> sendonly", offer("m=audio 6000 RTP/AVP 0", "a=recvonly"), PREFS, "PCMU", 0, None, 20,
     Direction.SENDONLY),
    ("session-level sendonly", offer("m=audio 6000 RTP/AVP 0", session_attrs=("a=sendonly",)), PREFS, "PCMU", 0,
     None, 20, Direction.RECVONLY),
    ("rfc2543 hold c=0.0.0.0", offer("m=audio 6000 RTP/AVP 0", c="c=IN IP4 0.0.0.0"), PREFS, "PCMU", 0, None, 20,
     Direction.RECVONLY),
    ("video line skipped", offer("m=video 7000 RTP/AVP 31") .replace("m=video", "m=audio 6000 RTP/AVP 0\r\nm=video"),
     PREFS, "PCMU", 0, None, 20, Direction.SENDRECV),
]


@pytest.mark.parametrize(("name", "text", "prefs", "codec", "pt", "te", "ptime", "direction"), NEGOTIATION_TABLE,
                         ids=[row[0] for row in NEGOTIATION_TABLE])
def test_negotiation_table(name: str, text: str, prefs: tuple[str, ...], codec: str, pt: int, te: int | None,
                           ptime: int, direction: Direction) -> None:
    """Each offer negotiates to the expected codec, payload types, ptime and direction."""
    media = negotiate_answer(parse_sdp(text), prefs)
    assert (media.codec, media.payload_type, media.telephone_event_pt, media.ptime_ms, media.direction) == (
        codec, pt, te, ptime, direction)
    assert media.remote_port == 6000


REJECT_TABLE = [
    ("g729 only", offer("m=audio 6000 RTP/AVP 18", "a=rtpmap:18 G729/8000"), 488, "no common codec"),
    ("no audio", offer("m=video 6000 RTP/AVP 31"), 488, "no audio stream"),
    ("audio port 0", offer("m=audio 0 RTP/AVP 0"), 488, "no audio stream"),
    ("srtp only, srtp off", offer("m=audio 6000 RTP/SAVP 0"), 488, "SRTP is off here"),
    ("opus at wrong rate", offer("m=audio 6000 RTP/AVP 96", "a=rtpmap:96 opus/8000"), 488, "no common codec"),
    ("not sdp", "hello\r\n", 400, "must start with v=0"),
    ("no origin", "v=0\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n", 400, "missing o="),
    ("no connection", offer("m=audio 6000 RTP/AVP 0", c="s=x"), 400, "has no c= line"),
    ("hostname in c=", offer("m=audio 6000 RTP/AVP 0", c="c=IN IP4 pc33.example.com"), 488, "literal IP"),
    ("huge port", offer("m=audio 99999999999999999999999 RTP/AVP 0"), 400, "m= port must be a number"),
    ("unreadable rtpmap is unusable", offer("m=audio 6000 RTP/AVP 96", "a=rtpmap:96 opus"), 488,
     "no common codec"),
    ("unreadable rtpmap for a static pt", offer("m=audio 6000 RTP/AVP 0", "a=rtpmap:0 LPC"), 488, "no common codec"),
    ("bad line", offer("m=audio 6000 RTP/AVP 0", "garbage"), 400, "not 'x=value'"),
    ("oversized", "v=0\r\n" + "a=x\r\n" * 5000, 400, "over the"),
]


@pytest.mark.parametrize(("name", "text", "status", "message"), REJECT_TABLE, ids=[row[0] for row in REJECT_TABLE])
def test_reject_table(name: str, text: str, status: int, message: str) -> None:
    """Unusable offers raise with the SIP status to answer and a precise reason."""
    with pytest.raises(SdpError) as caught:
        negotiate_answer(parse_sdp(text), PREFS)
    assert caught.value.sip_status == status
    assert message in str(caught.value)
    assert isinstance(caught.value, SdpNotAcceptable) == (status == 488)


def test_answer_mirrors_m_lines_and_carries_direction() -> None:
    """The answer has one m-line per offered one, rejects the extra one with port 0, states our direction."""
    text = offer("m=audio 6000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=sendonly") + \
        "m=video 7000 RTP/AVP 31\r\n"
    parsed = parse_sdp(text)
    media = negotiate_answer(parsed, PREFS)
    answer = build_answer(parsed, media, local_host="127.0.0.1", local_port=40000, session_id=7, version=1)
    assert "m=audio 40000 RTP/AVP 0 101\r\n" in answer
    assert "a=rtpmap:101 telephone-event/8000\r\n" in answer
    assert "m=video 0 RTP/AVP 31\r\n" in answer
    assert "a=recvonly\r\n" in answer
    reparsed = parse_sdp(answer)
    assert reparsed.media[0].direction is Direction.RECVONLY


def test_local_hold_limits_direction() -> None:
    """When we hold, a sendrecv offer is answered sendonly, a sendonly one inactive."""
    assert negotiate_answer(parse_sdp(SIPP_PCMU), PREFS, local_hold=True).direction is Direction.SENDONLY
    held = offer("m=audio 6000 RTP/AVP 0", "a=sendonly")
    assert negotiate_answer(parse_sdp(held), PREFS, local_hold=True).direction is Direction.INACTIVE


def test_offer_then_answer_round_trip() -> None:
    """Our offer lists every codec with telephone-event; the peer's answer is read back as NegotiatedMedia."""
    ours = build_offer(("opus", "PCMA"), local_host="127.0.0.1", local_port=40002, session_id=1, version=1)
    parsed = parse_sdp(ours)
    assert [f.encoding for f in parsed.media[0].formats] == ["opus", "PCMA", "telephone-event", "telephone-event"]
    peer_answer = negotiate_answer(parsed, ("PCMA",))
    assert peer_answer.codec == "PCMA" and peer_answer.telephone_event_pt == 101
    text = build_answer(parsed, peer_answer, local_host="127.0.0.2", local_port=5000, session_id=9, version=1)
    ours_media = accept_answer(parse_sdp(text), ("opus", "PCMA"))
    assert (ours_media.codec, ours_media.remote_host, ours_media.remote_port) == ("PCMA", "127.0.0.2", 5000)
    assert ours_media.direction is Direction.SENDRECV


KEY = bytes(range(30))
THEIR_KEY = base64.b64encode(bytes(range(100, 130))).decode()
SAVP = offer("m=audio 6000 RTP/SAVP 0 101", "a=rtpmap:101 telephone-event/8000",
             "a=crypto:1 AES_CM_256_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(46)).decode(),
             f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}|2^20")


def test_sdes_offer_over_tls_is_answered_with_our_key() -> None:
    """RTP/SAVP with a suite we run (the unknown 256-bit one skipped): the answer keeps the proto, the
    offer's tag and suite, and carries our key; the peer's key is decoded for the receiver."""
    negotiated = negotiate_answer(parse_sdp(SAVP), PREFS, srtp=SrtpPolicy.OPTIONAL, secure_signalling=True,
                                  local_key=KEY)
    assert negotiated.srtp == SrtpKeys("AES_CM_128_HMAC_SHA1_80", 2, KEY, bytes(range(100, 130)))
    answer = build_answer(parse_sdp(SAVP), negotiated, local_host="192.0.2.1", local_port=4000, session_id=1,
                          version=1)
    assert "m=audio 4000 RTP/SAVP 0 101" in answer
    assert f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(KEY).decode()}" in answer


@pytest.mark.parametrize(("text", "policy", "secure", "reason"), [
    (SAVP, SrtpPolicy.OPTIONAL, False, "only taken over TLS"),
    (SAVP, SrtpPolicy.OFF, True, "SRTP is off here"),
    (offer("m=audio 6000 RTP/AVP 0"), SrtpPolicy.REQUIRED, True, "SRTP is required"),
    (offer("m=audio 6000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ="), SrtpPolicy.REQUIRED,
     True, "no a=crypto with a suite we support"),
])
def test_srtp_policy_refusals_are_488(text: str, policy: SrtpPolicy, secure: bool, reason: str) -> None:
    """SDES keys over plain signalling, SAVP with SRTP off, plain RTP where SRTP is required, or no usable
    key: 488 with the reason."""
    with pytest.raises(SdpNotAcceptable, match=reason):
        negotiate_answer(parse_sdp(text), PREFS, srtp=policy, secure_signalling=secure, local_key=KEY)


def test_plain_offer_stays_plain_when_srtp_is_optional() -> None:
    negotiated = negotiate_answer(parse_sdp(offer("m=audio 6000 RTP/AVP 0")), PREFS, srtp=SrtpPolicy.OPTIONAL,
                                  secure_signalling=True, local_key=KEY)
    assert negotiated.srtp is None

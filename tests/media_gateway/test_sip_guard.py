"""The SIP guard and syntax checks as pure functions (no sockets): ACL, flood bucket, rewrite, answers."""

from __future__ import annotations

import pytest
from dialtone.media_gateway.call_rules import (
    SessionIntervalTooSmall,
    parse_dtmf_info,
    parse_sip_uri,
    session_timer,
    sip_uri_transport,
)
from dialtone.media_gateway.config import SipConfig
from dialtone.media_gateway.sip_guard import GuardedMessage, SipGuard, Verdict
from dialtone.media_gateway.sip_syntax import SipSyntaxError, canonical_request, read_request, split_message

from tests.media_gateway.torture import address_variants, torture_message

OPTIONS = (b"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
           b"From: <sip:a@b>;tag=1\r\nTo: <sip:bot@c>\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_acl_drops_sources_outside_allowed_networks() -> None:
    """Only sources inside the configured CIDRs pass; garbage addresses are refused too."""
    guard = SipGuard(SipConfig(allowed_networks=["10.0.0.0/8", "2001:db8::/32"]))
    assert guard.inspect(OPTIONS, "10.1.2.3")[0] is Verdict.PASS
    assert guard.inspect(OPTIONS, "2001:db8::5")[0] is Verdict.PASS
    assert guard.inspect(OPTIONS, "127.0.0.1") == (Verdict.DROP, None)
    assert not guard.allowed("not-an-ip")


def test_flood_bucket_bounds_each_source() -> None:
    """A source gets its burst, then one datagram per 1/rate seconds; other sources are unaffected."""
    clock = Clock()
    guard = SipGuard(SipConfig(flood_rate_per_s=2.0, flood_burst=3), clock=clock)
    verdicts = [guard.inspect(OPTIONS, "127.0.0.1")[0] for _ in range(5)]
    assert verdicts == [Verdict.PASS] * 3 + [Verdict.DROP] * 2
    assert guard.inspect(OPTIONS, "127.0.0.2")[0] is Verdict.PASS
    clock.now = 0.5
    assert guard.inspect(OPTIONS, "127.0.0.1")[0] is Verdict.PASS
    assert guard.inspect(OPTIONS, "127.0.0.1")[0] is Verdict.DROP


def test_flood_table_is_bounded() -> None:
    """Spoofed sources cannot grow the bucket table beyond its limit."""
    guard = SipGuard(SipConfig(allowed_networks=["10.0.0.0/8"]), max_sources_tracked=100)
    for i in range(1000):
        guard.inspect(OPTIONS, f"10.0.{i // 256}.{i % 256}")
    assert len(guard._buckets) == 100


def test_folded_torture_invite_is_rewritten_plainly() -> None:
    """wsinv's folded, oddly spaced headers become one canonical line each; the raw bytes ride along."""
    raw = torture_message("wsinv")
    verdict, text = SipGuard(SipConfig()).inspect(raw, "127.0.0.1")
    assert verdict is Verdict.PASS and isinstance(text, GuardedMessage)
    assert text.raw == raw
    lines = text.split("\r\n\r\n", 1)[0].split("\r\n")
    assert "Via: SIP/2.0/UDP 192.0.2.2;branch=390skdjuw" in lines
    assert "CSeq: 9 INVITE" in lines
    assert "To: <sip:vivekg@chair-dnrc.example.com>;tag=1918181833n" in lines
    assert "Max-Forwards: 0068" in lines
    body = text.split("\r\n\r\n", 1)[1]
    assert f"Content-Length: {len(body)}" in lines


@pytest.mark.parametrize(("name", "status", "header"), [
    ("bext01", 420, b"Unsupported: nothingSupportsThis, nothingSupportsThisEither"),
    ("invut", 415, b"Accept: application/sdp"),
    ("sdp01", 406, b"Accept: application/sdp"),
    ("badvers", 505, b"CSeq:"),
    ("intmeth", 501, b"Allow: INVITE"),
])
def test_guard_answers_carry_the_right_headers(name: str, status: int, header: bytes) -> None:
    """Stateless answers copy the request's Via/From/To/Call-ID/CSeq and add what the status needs."""
    verdict, response = SipGuard(SipConfig()).inspect(torture_message(name), "127.0.0.1")
    assert verdict is Verdict.REPLY and isinstance(response, bytes)
    assert response.startswith(f"SIP/2.0 {status} ".encode())
    assert header in response
    assert b"\r\nVia: " in response and b";tag=" in response.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]


def test_rfc2543_invite_gets_a_contact_from_its_from_uri() -> None:
    """inv2543 has no Contact; the rewrite adds one from From (RFC 2543's remote target)."""
    text = canonical_request(read_request(split_message(torture_message("inv2543"))))
    assert "Contact: <sip:+13035551111@ift.client.example.net;user=phone>" in text


@pytest.mark.parametrize(("value", "problem"), [
    (b"To: \"Watson <sip:w@example.org>\r\n", "unterminated quoted string"),
    (b"To: Watson, Thomas <sip:w@example.org>\r\n", "display name"),
    (b"To: < sip:w@example.org >\r\n", "without spaces"),
    (b"To: <sip:w@example.org>;;\r\n", "empty or invalid parameter"),
])
def test_address_headers_are_checked(value: bytes, problem: str) -> None:
    """Illegal name-addr forms raise a 400 with the reason."""
    message = OPTIONS.replace(b"To: <sip:bot@c>\r\n", value)
    with pytest.raises(SipSyntaxError) as caught:
        read_request(split_message(message))
    assert caught.value.status == 400 and problem in str(caught.value)


@pytest.mark.parametrize(("content_type", "body", "expected"), [
    ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", ("5", 160)),
    ("application/dtmf-relay", "signal= #\nduration=250", ("#", 250)),
    ("Application/DTMF-Relay", "Signal=a", ("A", 100)),
    ("application/dtmf", "7", ("7", 100)),
    ("application/dtmf-relay", "Signal=X", None),
    ("text/plain", "Signal=5", None),
    ("application/dtmf-relay", "Duration=100", None),
])
def test_info_dtmf_bodies(content_type: str, body: str, expected: tuple[str, int] | None) -> None:
    """SIP INFO DTMF bodies in both common formats; anything else is ignored."""
    assert parse_dtmf_info(content_type, body) == expected


def test_sip_uri_parsing() -> None:
    """Originate targets: user, host (IPv6 too) and port, with 5060 as default; others refused."""
    assert parse_sip_uri("sip:bob@127.0.0.1:5080") == ("bob", "127.0.0.1", 5080)
    assert parse_sip_uri("sip:bob@pbx.example.com;transport=udp") == ("bob", "pbx.example.com", 5060)
    assert parse_sip_uri("sip:[::1]:5070") == ("", "::1", 5070)
    for bad in ("tel:+1555", "bob@host", "sip:bob@host:99999"):
        with pytest.raises(ValueError):
            parse_sip_uri(bad)


def test_sip_uri_transport() -> None:
    """sips: and ;transport=tls mean TLS (5061 by default), ;transport=tcp TCP, else UDP; others refused."""
    assert [sip_uri_transport(uri) for uri in ("sip:bob@h", "sips:bob@h", "sip:bob@h:5070;transport=TLS",
                                               "sip:h;lr;transport=tcp", "sips:bob@h;transport=tcp")] == [
        "udp", "tls", "tls", "tcp", "tls"]
    assert parse_sip_uri("sips:bob@pbx.example.com") == ("bob", "pbx.example.com", 5061)
    assert parse_sip_uri("sip:bob@pbx.example.com;transport=tls") == ("bob", "pbx.example.com", 5061)
    for bad in ("sip:bob@h;transport=sctp", "sips:bob@h;transport=ws", "tel:+1555"):
        with pytest.raises(ValueError):
            sip_uri_transport(bad)


@pytest.mark.parametrize(("headers", "expected"), [
    ((), None),
    ((("Session-Expires", "1800"),), (1800, "uac")),
    ((("Session-Expires", "1800;refresher=uas"),), (1800, "uas")),
    ((("x", "600 ; refresher=UAC"),), (600, "uac")),
    ((("Session-Expires", "100"), ("Min-SE", "300")), (300, "uac")),
    ((("Session-Expires", "soon"),), None),
])
def test_session_timer_negotiation(headers: tuple[tuple[str, str], ...], expected: tuple[int, str] | None) -> None:
    """RFC 4028: the caller's interval (raised to its Min-SE) and refresher; 'uac' when it left the choice."""
    assert session_timer(headers, 90) == expected


def test_session_timer_below_min_se_is_refused() -> None:
    """An interval below our Min-SE raises (the call answers 422 with Min-SE)."""
    with pytest.raises(SessionIntervalTooSmall):
        session_timer((("Session-Expires", "30"),), 90)


def test_tcp_framing_cuts_messages_by_content_length() -> None:
    """SIP over TCP: keep-alive CRLFs skipped, messages cut at Content-Length, a partial one waits,
    an unusable Content-Length closes the stream (None)."""
    from dialtone.media_gateway.sip_tcp import frame_messages

    body = b"v=0\r\n"
    one = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\n" + body
    two = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n"
    buffer = bytearray(b"\r\n\r\n" + one + two + one[:20])
    assert frame_messages(buffer) == [one, two]
    assert bytes(buffer) == one[:20]
    buffer += one[20:]
    assert frame_messages(buffer) == [one] and not buffer
    assert frame_messages(bytearray(b"INVITE x SIP/2.0\r\nContent-Length: -1\r\n\r\n")) is None
    assert frame_messages(bytearray(b"X" * 70000)) is None


@pytest.mark.parametrize(("name", "data"), address_variants(), ids=[name for name, _ in address_variants()])
def test_unusable_hosts_and_ports_are_answered_400(name: str, data: bytes) -> None:
    """Every header the stack may send to is checked: a bad host or port gets 400 (to the datagram's
    source), never a pass to sippy, whose sender thread died on sendto() to port 70000."""
    verdict, payload = SipGuard(SipConfig()).inspect(data, "127.0.0.1")
    assert verdict is Verdict.REPLY, f"{name}: {verdict}"
    assert isinstance(payload, bytes) and payload.startswith(b"SIP/2.0 400 "), payload[:120]


@pytest.mark.parametrize("value", ["sip:a@example.com", "sip:a@example.com:5060", "sip:a@192.0.2.1:65535",
                                   "sip:a@[2001:db8::10]:5070", "sip:[2001:db8::10:5070]", "sip:a@pbx_1.corp.",
                                   "sip:user;par=u%40example.net@example.com", "tel:+15551234567"])
def test_usable_addresses_pass(value: str) -> None:
    """Hostnames, IPv4, IPv6 references (RFC 4475 §3.1.1.x) and ports up to 65535 still pass."""
    data = OPTIONS.replace(b"<sip:bot@c>", f"<{value}>".encode())
    assert SipGuard(SipConfig()).inspect(data, "127.0.0.1")[0] is Verdict.PASS


def test_response_naming_an_unusable_contact_is_dropped() -> None:
    """A response's Contact becomes where we send ACK and BYE: one with port 70000 is dropped, counted."""
    response = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\n"
                b"To: <sip:c@d>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:%s>\r\n"
                b"Content-Length: 0\r\n\r\n")
    guard = SipGuard(SipConfig())
    assert guard.inspect(response % b"70000", "127.0.0.1") == (Verdict.DROP, None)
    assert guard.inspect(response % b"5080", "127.0.0.1")[0] is Verdict.PASS


def test_trusted_probe_source_skips_acl_and_flood_only() -> None:
    """The gateway's own liveness probe (one exact address and port) passes an ACL that excludes it,
    and is never flood-limited; the same address from another port is still refused."""
    guard = SipGuard(SipConfig(allowed_networks=["10.0.0.0/8"], flood_burst=1, flood_rate_per_s=0.001))
    guard.trust("127.0.0.1", 40000)
    assert [guard.inspect(OPTIONS, "127.0.0.1", 40000)[0] for _ in range(3)] == [Verdict.PASS] * 3
    assert guard.inspect(OPTIONS, "127.0.0.1", 40001)[0] is Verdict.DROP
    assert guard.inspect(OPTIONS.replace(b"5070", b"70000"), "127.0.0.1", 40000)[0] is Verdict.REPLY

"""RFC 4475 torture messages and our own malformed corpus against the running gateway (real UDP).

Valid messages are processed (an INVITE is answered 200, an OPTIONS 200, a REGISTER 405,
an unknown method 501); invalid ones get the answer RFC 4475 gives, or silence when no
response can be formed. Afterwards a normal call still works and nothing piled up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dialtone.media_gateway.service import MediaGatewayApp

from tests.media_gateway.support import gateway_config, run_sipp, start_gateway, start_speech
from tests.media_gateway.torture import TORTURE_DIR, exchange, torture_message

PROCESSED_INVITE = {200}     # answered (100/180 come first)
SILENCE: set[int] = set()

# name -> the final status codes RFC 4475 allows (SILENCE: no response at all).
EXPECTED: dict[str, set[int]] = {
    # 3.1.1 valid messages: processed
    "wsinv": PROCESSED_INVITE, "intmeth": {501, 405}, "esc01": PROCESSED_INVITE, "escnull": {405},
    "esc02": {501, 405}, "lwsdisp": {200}, "longreq": PROCESSED_INVITE, "dblreq": {405}, "semiuri": {200},
    "transports": {200}, "mpart01": {405}, "unreason": SILENCE, "noreason": SILENCE,
    # 3.1.2 invalid messages
    "badinv01": {400}, "clerr": {400}, "ncl": {400}, "scalar02": {400}, "scalarlg": SILENCE, "quotbal": {400},
    "ltgtruri": {400}, "lwsruri": {400}, "lwsstart": {400}, "trws": {400}, "escruri": {400}, "baddate": {400},
    "regbadct": {400}, "badaspec": {400}, "baddn": {400}, "badvers": {505}, "mismatch01": {400},
    "mismatch02": {400, 501}, "bigcode": SILENCE,
    # 3.2 transaction layer
    "badbranch": {200},
    # 3.3 application layer
    "insuf": {400}, "unkscm": {416}, "novelsc": {416}, "unksm2": {405}, "bext01": {420}, "invut": {415},
    "regaut01": {405}, "multi01": {400}, "mcl01": {400}, "bcast": SILENCE, "zeromf": {200}, "cparam01": {405},
    "cparam02": {405}, "regescrt": {405, 400}, "sdp01": {406},
    # 3.4 backward compatibility
    "inv2543": PROCESSED_INVITE,
}


@pytest.fixture
async def gateway() -> AsyncIterator[MediaGatewayApp]:
    server, _speech, address = await start_speech()
    app = await start_gateway(gateway_config(address))
    try:
        yield app
    finally:
        await app.close()
        await server.stop(0)


def _final(codes: list[int]) -> set[int]:
    return {code for code in codes if code >= 200}


def test_table_covers_all_49_messages() -> None:
    """Every RFC 4475 message in tests/media_gateway/data/rfc4475 has an expected outcome here."""
    assert sorted(p.stem for p in TORTURE_DIR.glob("*.dat")) == sorted(EXPECTED)
    assert len(EXPECTED) == 49


async def test_rfc4475_outcomes(gateway: MediaGatewayApp) -> None:
    """Each torture message gets the answer the RFC gives (or silence), sent concurrently from 49 sockets."""
    names = sorted(EXPECTED)
    results = await asyncio.gather(*(exchange(gateway.sip_port, torture_message(n), 1.2) for n in names))
    wrong = {}
    for name, codes in zip(names, results, strict=True):
        final = _final(codes)
        expected = EXPECTED[name]
        if (expected == SILENCE and codes) or (expected and (len(final) != 1 or not final <= expected)):
            wrong[name] = (codes, sorted(expected))
    assert not wrong, f"outcomes that differ from RFC 4475: {wrong}"


def _invite(extra_headers: str = "", cseq: str = "1 INVITE", body: str | None = None,
            content_length: str | None = None) -> bytes:
    sdp = body if body is not None else (
        "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n")
    length = content_length if content_length is not None else str(len(sdp))
    return (f"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-{os.urandom(4).hex()}"
            f"\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bot@example.com>\r\n"
            f"Call-ID: mal-{os.urandom(6).hex()}\r\nCSeq: {cseq}\r\nContact: <sip:a@192.0.2.1>\r\nMax-Forwards: 70\r\n"
            f"{extra_headers}Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{sdp}").encode()


MALFORMED: list[tuple[str, bytes, set[int]]] = [
    ("truncated in the headers", _invite()[:90], SILENCE),
    ("truncated body", _invite(content_length="400"), {400}),
    ("header line without colon", _invite("This is not a header\r\n"), {400}),
    ("header name with a space", _invite("X Bad: 1\r\n"), {400}),
    ("huge Content-Length", _invite(content_length="99999999999999999999"), {400}),
    ("Content-Length of 5000 digits", _invite(content_length="9" * 5000), {400}),
    ("CSeq of 5000 digits", _invite(cseq="9" * 5000 + " INVITE"), {400}),
    ("CSeq not a number", _invite(cseq="abc INVITE"), {400}),
    ("CSeq method mismatch", _invite(cseq="1 BYE"), {400}),
    ("negative Max-Forwards", _invite("Max-Forwards: -1\r\n"), {400}),
    ("binary garbage", bytes(range(256)) * 4, SILENCE),
    ("NUL bytes in the start line", b"INVITE sip:\x00\x00 SIP/2.0\r\n\r\n", SILENCE),
    ("no Via", _invite().replace(b"Via: ", b"X-Via: "), SILENCE),
    ("oversized datagram", _invite("X-Pad: " + "a" * 61000 + "\r\n"), SILENCE),
    ("empty keep-alive", b"\r\n\r\n", SILENCE),
    ("response with a 4-digit code", b"SIP/2.0 9999 Odd\r\nVia: SIP/2.0/UDP x\r\n\r\n", SILENCE),
    # Python's int() reads any Unicode digit; SIP numbers are ASCII digits only
    ("CSeq in fullwidth digits", _invite(cseq="\uff11 INVITE"), {400}),
    ("Content-Length in fullwidth digits", _invite(body="", content_length="\uff10"), {400}),
    ("Content-Length with a parameter", _invite(body="", content_length="0;x=y"), {400}),
    ("cut off after a header line, no empty line", _invite().split(b"Max-Forwards")[0], {400}),
]


@pytest.mark.parametrize(("name", "data", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_corpus(gateway: MediaGatewayApp, name: str, data: bytes, expected: set[int]) -> None:
    """Our own malformed messages: 400 when a response can be formed, silence otherwise."""
    codes = await exchange(gateway.sip_port, data, 0.4, rewrite=False)
    if expected == SILENCE:
        assert codes == [], f"{name}: expected silence, got {codes}"
    else:
        assert _final(codes) == expected, f"{name}: got {codes}"


def _options(head: str = "", via: str = "SIP/2.0/UDP 192.0.2.1:5060", content_length: str = "0") -> bytes:
    return (f"{head}OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: {via};branch=z9hG4bK-{os.urandom(4).hex()}\r\n"
            f"From: <sip:a@example.com>;tag=1\r\nTo: <sip:bot@example.com>\r\nCall-ID: ok-{os.urandom(6).hex()}\r\n"
            f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: {content_length}\r\n\r\n").encode()


LEGAL_BUT_UNUSUAL = [
    ("CRLFs before the request line (RFC 3261 §7.5)", _options(head="\r\n\r\n\r\n")),
    ("lower-case protocol in Via", _options(via="sip/2.0/udp 192.0.2.1:5060")),
    ("Content-Length of thirty zeros", _options(content_length="0" * 30)),
]


@pytest.mark.parametrize(("name", "data"), LEGAL_BUT_UNUSUAL, ids=[m[0] for m in LEGAL_BUT_UNUSUAL])
async def test_legal_but_unusual_requests_are_processed(gateway: MediaGatewayApp, name: str, data: bytes) -> None:
    """Legal spellings a strict reader must not refuse: each OPTIONS is answered 200."""
    assert _final(await exchange(gateway.sip_port, data, 0.4)) == {200}, name


async def test_invite_larger_than_8k_is_processed(gateway: MediaGatewayApp) -> None:
    """A legal 12 KiB INVITE (sippy alone reads 8 KiB of a datagram) is answered 200."""
    big = _invite("X-Pad: " + "b" * 12000 + "\r\n").replace(b"192.0.2.1:5060", b"127.0.0.1:1")
    codes = await exchange(gateway.sip_port, big, 0.6)
    assert 200 in codes, codes


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_corpus_repeated_then_a_normal_call_works(gateway: MediaGatewayApp, tmp_path: Path) -> None:
    """20 rounds of the torture and malformed corpus: the stack holds no leftovers, memory stays flat,
    and a normal sipp call afterwards still connects and ends cleanly."""
    corpus = [torture_message(n) for n in sorted(EXPECTED) if n not in ("wsinv", "esc01", "longreq", "inv2543")]
    corpus += [data for _, data, _ in MALFORMED]
    await exchange(gateway.sip_port, corpus[0], 0.05)
    before = _rss_kib()
    for _ in range(20):
        await asyncio.gather(*(exchange(gateway.sip_port, data, 0.05) for data in corpus))
    grown_kib = _rss_kib() - before
    assert grown_kib < 30 * 1024, f"RSS grew by {grown_kib} KiB over 20 rounds"
    assert gateway.stack is not None and gateway.stack.active_legs() == 0
    assert gateway.calls is not None and not gateway.calls.calls
    result = await run_sipp("short_call", gateway.sip_port, tmp_path)
    assert result.returncode == 0, result.errors + result.stdout


def _multipart_invite(with_sdp: bool) -> bytes:
    sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    parts = [("application/sdp", sdp)] if with_sdp else []
    parts.append(("application/ISUP;version=itu-t92+", "\x01\x00\x49\x00\x00\x03\x02\x00\x07"))
    body = "".join(f"--b0undary\r\nContent-Type: {ctype}\r\n\r\n{content}\r\n" for ctype, content in parts)
    body += "--b0undary--\r\n"
    return (f"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-{os.urandom(4).hex()}"
            f"\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bot@example.com>\r\nCall-ID: mp-{os.urandom(6).hex()}"
            "\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1>\r\nMax-Forwards: 70\r\n"
            "Content-Type: multipart/mixed;boundary=b0undary\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}").encode()


async def test_multipart_invite_with_sdp_is_answered(gateway: MediaGatewayApp) -> None:
    """A carrier INVITE with SDP + ISUP (multipart/mixed) is answered 200 from its SDP part;
    one without an SDP part gets 415 with Accept."""
    assert 200 in await exchange(gateway.sip_port, _multipart_invite(True), 0.6)
    received: list[bytes] = []
    codes = await exchange(gateway.sip_port, _multipart_invite(False), 0.4, sink=received)
    assert codes == [415] and b"Accept: application/sdp" in received[0]

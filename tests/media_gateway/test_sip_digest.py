"""Inbound digest authentication (issue 16 item 3): the computations against RFC 7616's vectors, the
guard's challenges, and a real sipp phone answering them against a real gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dialtone.common.config import ConfigError
from dialtone.media_gateway.config import SipConfig
from dialtone.media_gateway.sip_digest import (
    ALGORITHMS,
    CredentialsError,
    DigestAuthenticator,
    DigestPolicy,
    load_users,
    parse_digest,
    response,
)
from dialtone.media_gateway.sip_guard import SipGuard, Verdict

from tests.media_gateway.media_spy import MediaSpy
from tests.media_gateway.support import gateway_config, run_sipp, start_gateway, start_speech, wait_until

# RFC 7616 §3.9.1 (its HTTP example; SIP computes the same way with the SIP method and Request-URI).
RFC7616 = {"username": "Mufasa", "realm": "http-auth@example.org", "password": "Circle of Life", "method": "GET",
           "uri": "/dir/index.html", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "nc": "00000001",
           "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "qop": "auth"}


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_responses_match_rfc_7616(algorithm, expected) -> None:
    v = RFC7616
    assert response(algorithm, v["username"], v["realm"], v["password"], v["method"], v["uri"], v["nonce"], v) \
        == expected


def test_parse_digest_reads_quoted_and_bare_values() -> None:
    params = parse_digest('Digest username="a\\"b", realm="r", nonce="n", uri="sip:bot@h", response="00", '
                          'algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c"')
    assert params is not None and params["username"] == 'a"b' and params["algorithm"] == "SHA-256"
    assert parse_digest('Basic dXNlcjpwYXNz') is None
    assert parse_digest('Digest username="unterminated') is None


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def authorization(auth: DigestAuthenticator, nonce: str, password: str = "s3cret", algorithm: str = "SHA-256",
                  uri: str = "sip:bot@127.0.0.1") -> str:
    params = {"qop": "auth", "nc": "00000001", "cnonce": "xyz"}
    digest = response(algorithm, "alice", auth.policy.realm, password, "INVITE", uri, nonce, params)
    return (f'Digest username="alice", realm="{auth.policy.realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{digest}", algorithm={algorithm}, qop=auth, nc=00000001, cnonce="xyz"')


def test_challenge_answer_wrong_password_stale_nonce_and_exempt_sources() -> None:
    clock = Clock()
    auth = DigestAuthenticator(DigestPolicy("pbx.test", {"alice": "s3cret"}, ("10.0.0.0/8",), tuple(ALGORITHMS)),
                               clock)
    first = auth.check("INVITE", "127.0.0.1", [])
    assert (first.ok, first.status) == (False, 401)
    assert [value.split("algorithm=")[1].split(",")[0] for _, value in first.headers] == list(ALGORITHMS)
    nonce = parse_digest(first.headers[0][1])["nonce"]
    for algorithm in ALGORITHMS:
        assert auth.check("INVITE", "127.0.0.1", [authorization(auth, nonce, algorithm=algorithm)]).ok
    wrong = auth.check("INVITE", "127.0.0.1", [authorization(auth, nonce, password="guess")])
    assert (wrong.ok, wrong.status, wrong.headers) == (False, 403, ())
    # a nonce made for another address is not ours there
    assert auth.check("INVITE", "127.0.0.2", [authorization(auth, nonce)]).status == 401
    clock.now += 301
    stale = auth.check("INVITE", "127.0.0.1", [authorization(auth, nonce)])
    assert stale.status == 401 and "stale=true" in stale.headers[0][1]
    assert auth.check("INVITE", "10.1.2.3", []).ok          # a trunk known by address
    # another replica with the same secret accepts the challenge of this one
    twin = DigestAuthenticator(DigestPolicy("pbx.test", {"alice": "s3cret"}, nonce_secret=auth.policy.nonce_secret),
                               clock)
    fresh = parse_digest(auth.check("INVITE", "127.0.0.1", []).headers[1][1])["nonce"]
    assert twin.check("INVITE", "127.0.0.1", [authorization(twin, fresh)]).ok


INVITE = ("INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\n"
          "From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>{to_tag}\r\nCall-ID: c1\r\n"
          "CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:5999>\r\nMax-Forwards: 70\r\n{extra}"
          "Content-Length: 0\r\n\r\n")


def test_the_guard_challenges_new_calls_only() -> None:
    auth = DigestAuthenticator(DigestPolicy("pbx.test", {"alice": "s3cret"}))
    guard = SipGuard(SipConfig(), auth)
    verdict, reply = guard.inspect(INVITE.format(to_tag="", extra="").encode(), "127.0.0.1")
    assert verdict is Verdict.REPLY and reply.startswith(b"SIP/2.0 401 Unauthorized")
    assert reply.count(b"WWW-Authenticate: Digest realm=\"pbx.test\"") == 2   # SHA-256, then MD5
    nonce = parse_digest(next(line for line in reply.decode().split("\r\n")
                              if line.startswith("WWW-Authenticate")).split(": ", 1)[1])["nonce"]
    answered = INVITE.format(to_tag="", extra=f"Authorization: {authorization(auth, nonce)}\r\n")
    assert guard.inspect(answered.encode(), "127.0.0.1")[0] is Verdict.PASS
    # an INVITE inside a call (a re-INVITE: To has a tag) is not challenged again
    assert guard.inspect(INVITE.format(to_tag=";tag=x", extra="").encode(), "127.0.0.1")[0] is Verdict.PASS


def test_bad_credentials_files_are_refused_with_the_line(tmp_path: Path) -> None:
    good = tmp_path / "users"
    good.write_text("# phones\nalice:s3cret\n\nbob:pa:ss\n")
    assert load_users(str(good)) == {"alice": "s3cret", "bob": "pa:ss"}
    bad = tmp_path / "bad"
    bad.write_text("alice:s3cret\nnocolon\n")
    with pytest.raises(CredentialsError, match=f"{bad}:2: expected user:password"):
        load_users(str(bad))


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[object]:
    users = tmp_path / "sip-users"
    users.write_text("alice:s3cret\n")
    server, speech, address = await start_speech()
    # sipp 3.6 reads only the first challenge and knows only MD5
    config = gateway_config(address, auth_users_file=str(users), auth_realm="pbx.test", auth_algorithms=["MD5"])
    config.routing.by_callee = {"bot": "order_status"}
    app = await start_gateway(config)
    MediaSpy.opened.clear()
    try:
        yield app, speech
    finally:
        await app.close()
        await server.stop(0)


async def test_a_real_phone_answers_the_challenge_and_its_call_goes_through(guarded, tmp_path: Path) -> None:
    app, speech = guarded
    result = await run_sipp("uac_auth", app.sip_port, tmp_path, extra=["-au", "alice", "-ap", "s3cret"])
    assert result.returncode == 0, f"{result.errors}\n{result.stdout}\n{result.stderr}"
    await wait_until(lambda: bool(speech.streams) and bool(speech.streams[0].of("call_end")), 10, "CallEnd")
    assert len(speech.streams) == 1   # the challenged INVITE made no call


async def test_a_wrong_password_gets_403_and_no_call(guarded, tmp_path: Path) -> None:
    app, speech = guarded
    result = await run_sipp("uac_auth_wrong", app.sip_port, tmp_path, extra=["-au", "alice", "-ap", "guess"])
    assert result.returncode == 0, f"{result.errors}\n{result.stdout}\n{result.stderr}"
    assert not speech.streams and not MediaSpy.opened


async def test_a_bad_credentials_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("nobody\n")
    config = gateway_config("127.0.0.1:1", auth_users_file=str(tmp_path / "users"))
    with pytest.raises(ConfigError, match="sip.auth_users_file: .*:1: expected user:password"):
        await start_gateway(config)

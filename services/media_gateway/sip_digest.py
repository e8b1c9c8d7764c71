"""Inbound SIP digest authentication (RFC 3261 §22, RFC 7616 computations, RFC 8760 algorithms).

Pure and stateless: a challenge's nonce is the time it was made and an HMAC of that time, the
source address and the realm, so any replica that shares ``nonce_secret`` can check it and nothing
is stored per caller. A nonce is good for ``NONCE_TTL_S``; an older one gets a fresh challenge with
``stale=true`` (the phone retries without asking its user). Replays within that window are not
detected (no nonce-count state): the window bounds them, as it does in stateless SIP proxies.

Written here because no maintained Python library verifies SIP digest on the server side: sippy
only answers challenges (the client side), and HTTP digest libraries do not know SIP's method/URI
rules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

NONCE_TTL_S = 300.0
# What can be offered (RFC 8760), by hashlib name. A challenge offers the policy's list in its order,
# the strongest first: a phone takes the first it knows (some, sipp 3.6 among them, read only the
# first challenge and know only MD5: list MD5 alone for them).
ALGORITHMS = {"SHA-512-256": "sha512_256", "SHA-256": "sha256", "MD5": "md5"}
DEFAULT_ALGORITHMS = ("SHA-256", "MD5")
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)\s*,?')
MAX_HEADER_CHARS = 4096


class CredentialsError(ValueError):
    """A credentials file that cannot be used; the message names the file and line."""


def load_users(path: str) -> dict[str, str]:
    """``user:password`` lines (a Kubernetes Secret mounted as a file); blank lines and # comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: cannot read the SIP credentials: {exc}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password or any(c in user for c in ' "\\'):
            raise CredentialsError(f"{path}:{number}: expected user:password (the user without spaces or quotes)")
        users[user] = password
    if not users:
        raise CredentialsError(f"{path}: no user:password line")
    return users


@dataclasses.dataclass(frozen=True)
class DigestPolicy:
    realm: str
    users: Mapping[str, str]
    exempt_networks: tuple[str, ...] = ()     # sources that need no credentials (a trunk known by address)
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    nonce_secret: bytes = dataclasses.field(default_factory=lambda: secrets.token_bytes(32))

    def exempt(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source.strip("[]"))
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in self.exempt_networks)


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    status: int = 0                              # 401 (challenge) or 403 (wrong credentials) when not ok
    detail: str = ""
    headers: tuple[tuple[str, str], ...] = ()    # WWW-Authenticate, one per algorithm


class DigestAuthenticator:
    def __init__(self, policy: DigestPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self._clock = clock

    def check(self, method: str, source: str, authorization: list[str]) -> Verdict:
        """``authorization``: the request's Authorization header values."""
        if self.policy.exempt(source):
            return Verdict(True)
        if not authorization:
            return self._challenge(source, "credentials required")
        params = parse_digest(authorization[0])
        if params is None:
            return self._challenge(source, "Authorization is not a Digest one")
        username, nonce = params.get("username", ""), params.get("nonce", "")
        algorithm = params.get("algorithm", "MD5").upper()
        if params.get("realm") != self.policy.realm or algorithm not in self.policy.algorithms:
            return self._challenge(source, "wrong realm or algorithm")
        age = self._nonce_age(nonce, source)
        if age is None:
            return self._challenge(source, "not our nonce")
        if age > NONCE_TTL_S:
            return self._challenge(source, "nonce expired", stale=True)
        password = self.policy.users.get(username)
        expected = None if password is None else response(algorithm, username, self.policy.realm, password, method,
                                                           params.get("uri", ""), nonce, params)
        if expected is None or not hmac.compare_digest(expected, params.get("response", "").lower()):
            return Verdict(False, 403, "wrong user name or password")
        return Verdict(True)

    def _challenge(self, source: str, detail: str, stale: bool = False) -> Verdict:
        nonce = self.make_nonce(source)
        extra = ", stale=true" if stale else ""
        headers = tuple(("WWW-Authenticate", f'Digest realm="{self.policy.realm}", nonce="{nonce}", '
                                             f'algorithm={name}, qop="auth"{extra}') for name in self.policy.algorithms)
        return Verdict(False, 401, detail, headers)

    def make_nonce(self, source: str) -> str:
        stamp = f"{int(self._clock()):x}"
        return f"{stamp}.{self._mac(stamp, source)}"

    def _nonce_age(self, nonce: str, source: str) -> float | None:
        stamp, _, mac = nonce.partition(".")
        if not stamp or not hmac.compare_digest(mac, self._mac(stamp, source)):
            return None
        try:
            return self._clock() - int(stamp, 16)
        except ValueError:
            return None

    def _mac(self, stamp: str, source: str) -> str:
        message = f"{stamp}|{source}|{self.policy.realm}".encode()
        return hmac.new(self.policy.nonce_secret, message, hashlib.sha256).hexdigest()[:32]


def parse_digest(value: str) -> dict[str, str] | None:
    """The parameters of ``Digest k=v, k="v"``; None when it is not Digest or does not parse."""
    value = value[:MAX_HEADER_CHARS].strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM_RE.match(rest, position)
        if match is None or match.end() == position:
            return None
        raw = match.group(2)
        params[match.group(1).lower()] = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
        position = match.end()
    return params


def response(algorithm: str, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
             params: Mapping[str, str]) -> str:
    """The digest a client computes (RFC 7616 §3.4.1; qop=auth or none, as SIP uses)."""
    name = ALGORITHMS[algorithm.upper()]

    def digest(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    ha1 = digest(f"{username}:{realm}:{password}")
    ha2 = digest(f"{method}:{uri}")
    if params.get("qop"):
        return digest(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:{params['qop']}:{ha2}")
    return digest(f"{ha1}:{nonce}:{ha2}")

"""SRTP for one call's RTP and RTCP (RFC 3711), keyed by SDES (RFC 4568): libsrtp through pylibsrtp.

pylibsrtp is the libsrtp binding aiortc uses; it does the cryptography and the replay window.
``SrtpContext`` holds the two sessions of a call (ours protects what we send, the peer's
unprotects what arrives) and tells a packet that fails authentication (dropped, counted by the
caller) from one it can pass on. RTCP is told from RTP by its packet type (RFC 5761), as the
transport already does.
"""

from __future__ import annotations

from dialtone.media_gateway.media_types import SrtpKeys
from pylibsrtp import Error, Policy, Session

_PROFILES = {"AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
             "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32}


class SrtpError(ValueError):
    """A packet that failed authentication or replay checks, or could not be protected."""


class SrtpContext:
    def __init__(self, keys: SrtpKeys) -> None:
        profile = _PROFILES.get(keys.suite)
        if profile is None:
            raise ValueError(f"SRTP suite {keys.suite!r} is not supported")
        self.keys = keys
        self._tx = Session(Policy(key=keys.local_key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        self._rx = Session(Policy(key=keys.remote_key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))

    def protect(self, packet: bytes, rtcp: bool) -> bytes:
        try:
            return self._tx.protect_rtcp(packet) if rtcp else self._tx.protect(packet)
        except Error as exc:
            raise SrtpError(f"cannot protect: {exc}") from None

    def unprotect(self, packet: bytes, rtcp: bool) -> bytes:
        try:
            return self._rx.unprotect_rtcp(packet) if rtcp else self._rx.unprotect(packet)
        except Error as exc:
            raise SrtpError(f"dropped: {exc}") from None

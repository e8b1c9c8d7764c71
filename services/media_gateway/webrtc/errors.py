"""Errors of the WebRTC leg. Each carries the HTTP status the API answers with.

    DialtoneError (dialtone.common.errors)
      +-- InvalidArgument
            +-- WebRtcError          400 unless a subclass says otherwise
                  +-- BadOffer       400: the SDP offer can't be answered (message says why)
                  +-- BadRequest     400: malformed API request body
                  +-- Unauthorized   401: missing or wrong access key
                  +-- UnknownSession 404: no such call
"""

from __future__ import annotations

from dialtone.common.errors import InvalidArgument


class WebRtcError(InvalidArgument):
    http_status = 400


class BadOffer(WebRtcError):
    """An SDP offer we refuse: garbage, no audio, no common codec, no DTLS."""


class BadRequest(WebRtcError):
    pass


class Unauthorized(WebRtcError):
    http_status = 401


class UnknownSession(WebRtcError):
    http_status = 404

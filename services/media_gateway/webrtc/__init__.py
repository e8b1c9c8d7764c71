"""The WebRTC leg of the media gateway: a browser softphone as a second way in besides SIP.

Modules (import them directly; this package imports nothing heavy on its own):

- ``config``       the ``webrtc:`` config section (``WebRtcConfig``)
- ``errors``       ``BadOffer`` and friends, each carrying its HTTP status
- ``core/``        sans-I/O logic: offer checks, playout queue, uplink framing, keypad, access key
- ``leg``          ``WebRtcLeg``: aiortc peer connection with the ``MediaSession`` callback shape
- ``tracks``       the paced outbound audio track fed by the playout queue
- ``live``         per-call live events for the page (server-sent events)
- ``speech_link``  the call's bidi stream to the speech gateway
- ``call``         one browser call: leg + speech link + live events
- ``http_server``  the page, the offer/hangup API and the event stream (aiohttp)
"""

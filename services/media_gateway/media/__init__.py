"""RTP media for the media gateway: one ``MediaSession`` per call on a port from ``PortAllocator``.

Sans-I/O cores (no sockets, time passed in): ``rfc4733`` (telephone-event dedup), ``inband_dtmf``
(Goertzel), ``playback`` (utterance queue), ``pacing`` (absolute-deadline clock), ``receive``
(aiortp's adaptive playout + decode + resample). ``session`` is the asyncio adapter over them.
"""

from dialtone.media_gateway.media.ports import PortAllocator, PortsExhausted
from dialtone.media_gateway.media.session import MediaSession  # noqa: E402

__all__ = ["MediaSession", "PortAllocator", "PortsExhausted"]

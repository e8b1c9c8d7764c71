"""The ``webrtc:`` section of the media gateway's config."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class IceServerConfig:
    """A STUN or TURN server handed to both peers (``stun:host:port``, ``turn:host:port?transport=udp``)."""

    urls: list[str] = dataclasses.field(default_factory=list)
    username: str = ""
    credential: str = ""


@dataclasses.dataclass
class WebRtcConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8088
    # Required (non-empty) when ``host`` is not a loopback address; checked at startup.
    access_key: str = ""
    # Empty: host candidates only, which is enough on loopback and a LAN.
    ice_servers: list[IceServerConfig] = dataclasses.field(default_factory=list)
    # Addresses offered as ICE host candidates (process-wide); empty: every interface but 127.0.0.1
    # (aioice's choice). ["127.0.0.1"] keeps a one-machine setup on loopback.
    ice_host_addresses: list[str] = dataclasses.field(default_factory=list)
    # Names offered by the page's dialog picker (free text is allowed too; empty = the runtime routes).
    dialogs: list[str] = dataclasses.field(default_factory=list)
    # Seconds a call may wait for ICE + DTLS before it is given up.
    connect_timeout_s: float = 20.0

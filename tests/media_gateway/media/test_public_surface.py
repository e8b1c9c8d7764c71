"""The media package's public surface is what signalling uses, and nothing more."""

import dialtone.media_gateway.media as media


def test_public_names() -> None:
    assert sorted(media.__all__) == ["MediaSession", "PortAllocator", "PortsExhausted"]
    assert all(hasattr(media, name) for name in media.__all__)


def test_session_interface_matches_the_contract() -> None:
    import inspect

    session = media.MediaSession
    params = inspect.signature(session.open).parameters
    assert list(params) == ["session_id", "bind_host", "port_allocator", "on_frame", "on_dtmf", "on_playback"]
    for name in ("start", "update", "play", "stop_playback", "stats", "close"):
        assert callable(getattr(session, name))
    assert list(inspect.signature(session.play).parameters) == ["self", "utterance_id", "pcm", "sample_rate", "last"]
    assert list(inspect.signature(media.PortAllocator).parameters) == ["low", "high"]

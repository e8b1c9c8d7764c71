"""Prometheus metrics for RTP media. Labels are bounded: codec (PCMU/PCMA/opus), drop reason.

DTMF digits by mode are counted once, where signalling hands them on (``media_dtmf_total``).

Per-packet counts are kept in the session and added here once a second and at close, so the
hot path does not take prometheus_client's lock 50 times a second per call.
"""

from __future__ import annotations

from dialtone.common import metrics

SESSIONS_ACTIVE = metrics.gauge("rtp_sessions_active", "RTP media sessions open")
PACKETS_RECEIVED = metrics.counter("rtp_packets_received_total", "RTP packets received", ["codec"])
PACKETS_SENT = metrics.counter("rtp_packets_sent_total", "RTP packets sent", ["codec"])
PACKETS_LOST = metrics.counter("rtp_packets_lost_total", "RTP packets lost (sequence gaps)", ["codec"])
LATE_FRAMES = metrics.counter("rtp_late_frames_total",
                              "Send ticks run more than half a frame late or skipped", ["codec"])
PLAYBACK_UNDERRUNS = metrics.counter("rtp_playback_underruns_total",
                                     "Send ticks inside a prompt with no audio queued (TTS behind the wire)",
                                     ["codec"])
DROPPED = metrics.counter("rtp_datagrams_dropped_total",
                          "Datagrams dropped on the RTP port (malformed, oversized, foreign source, "
                          "unexpected payload type)", ["reason"])
CALL_JITTER = metrics.histogram("rtp_call_jitter_seconds", "Interarrival jitter (RFC 3550) at call end",
                                ["codec"], buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16))
CALL_LOSS = metrics.histogram("rtp_call_loss_ratio", "Fraction of RTP packets lost per call",
                              ["codec"], buckets=(0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0))

DROP_REASONS = ("malformed", "oversized", "foreign_source", "payload_type", "not_started", "srtp_auth")


_COUNTED = (("packets_in", PACKETS_RECEIVED), ("packets_out", PACKETS_SENT), ("packets_lost", PACKETS_LOST),
            ("late_frames", LATE_FRAMES), ("playback_underruns", PLAYBACK_UNDERRUNS))


class SessionMetrics:
    """Adds one session's counters to Prometheus as deltas since the last flush."""

    def __init__(self) -> None:
        self._flushed: dict[str, float] = {}

    def _delta(self, stats: dict[str, float], key: str) -> float:
        last = self._flushed.get(key, 0.0)
        if stats[key] < last:
            last = 0.0   # a new stream after a codec change counts from zero
        delta = stats[key] - last
        if delta > 0:
            self._flushed[key] = stats[key]
        return delta

    def flush(self, codec: str, stats: dict[str, float], final: bool = False) -> None:
        for key, counter in _COUNTED:
            delta = self._delta(stats, key)
            if delta > 0:
                counter.labels(codec=codec).inc(delta)
        for reason in DROP_REASONS:
            delta = self._delta(stats, f"dropped_{reason}")
            if delta > 0:
                DROPPED.labels(reason=reason).inc(delta)
        if final and stats["packets_in"]:
            CALL_JITTER.labels(codec=codec).observe(stats["jitter_ms"] / 1000.0)
            CALL_LOSS.labels(codec=codec).observe(stats["packets_lost"] / (stats["packets_in"] + stats["packets_lost"]))

"""Prometheus metrics for RTP media. Labels are bounded: codec (PCMU/PCMA/opus), DTMF mode.

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
DROPPED = metrics.counter("rtp_datagrams_dropped_total",
                          "Datagrams dropped on the RTP port (malformed, oversized, foreign source, "
                          "unexpected payload type)", ["reason"])
CALL_JITTER = metrics.histogram("rtp_call_jitter_seconds", "Interarrival jitter (RFC 3550) at call end",
                                ["codec"], buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16))
CALL_LOSS = metrics.histogram("rtp_call_loss_ratio", "Fraction of RTP packets lost per call",
                              ["codec"], buckets=(0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0))
DTMF_DIGITS = metrics.counter("rtp_dtmf_digits_total", "DTMF digits detected in media", ["mode"])

DROP_REASONS = ("malformed", "oversized", "foreign_source", "payload_type", "not_started")

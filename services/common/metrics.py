"""One metrics helper: the Prometheus HTTP endpoint and metric constructors with
the ``dialtone_`` prefix. Labels must be bounded (service, method, outcome, code):
never a session id, a phone number or free text.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Buckets (seconds) for call-path latencies: turn latency, ASR, TTS first audio, backend calls.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75,
                   1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def start_metrics_server(host: str, port: int) -> int:
    """Serve /metrics on host:port (0 = a free port); returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)


def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    return Counter(f"dialtone_{name}", doc, labelnames=tuple(labels))


def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    return Gauge(f"dialtone_{name}", doc, labelnames=tuple(labels))


def histogram(name: str, doc: str, labels: Sequence[str] = (),
              buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
    return Histogram(f"dialtone_{name}", doc, labelnames=tuple(labels), buckets=tuple(buckets))

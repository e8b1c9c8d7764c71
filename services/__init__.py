"""dialtone: a self-hosted voice-call platform (four gRPC services and their tooling)."""

__version__ = "0.1.0"

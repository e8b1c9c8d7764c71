"""Sans-I/O policy cores of the integration gateway: retry decisions, token buckets,
the circuit breaker and idempotency records. Each is pure: state and ``now`` in,
new state and a decision out; no sockets, no clocks, no asyncio."""

"""Benchmarks: each module runs on its own (`python -m bench.<name>`) and prints p50/p95/p99."""

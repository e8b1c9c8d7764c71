"""Packaged example configs (services.yaml for the example backend)."""

"""Helpers for tests that run real processes: the adapter, Prometheus, Debian packages."""

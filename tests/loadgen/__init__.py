"""Tests of the load generator (remote_storage.loadgen)."""

"""``remote-storage check``: a conformance round trip against any remote-write/remote-read endpoint.

    >>> from remote_storage.check import Endpoint, run_checks, passed
    >>> endpoint = Endpoint("http://127.0.0.1:9201/api/v1/write", "http://127.0.0.1:9201/api/v1/read")
    >>> results = run_checks(endpoint, run_id="a1b2c3", now_ms=now_ms)  # doctest: +SKIP
    >>> passed(results)  # doctest: +SKIP
    True

The checks are described in :mod:`remote_storage.check.suite`, their levels
and outcomes in :mod:`remote_storage.check.report`.
"""

from __future__ import annotations

from remote_storage.check.client import Answer, Endpoint, Unreachable
from remote_storage.check.report import Level, Outcome, Result, format_table, passed, to_json
from remote_storage.check.suite import PROTOCOLS, run_checks

__all__ = [
    "PROTOCOLS",
    "Answer",
    "Endpoint",
    "Level",
    "Outcome",
    "Result",
    "Unreachable",
    "format_table",
    "passed",
    "run_checks",
    "to_json",
]

"""``remote-storage check`` against the service on every backend, a real Prometheus, and a broken endpoint."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from remote_storage.auth import hash_password
from remote_storage.backends.memory import MemoryStorage
from remote_storage.check.cli import configure
from remote_storage.server import create_app
from remote_storage.storage import Context, Query, TimeSeries
from tests.support.adapter import Adapter
from tests.support.certs import CertificateAuthority
from tests.support.net import free_port
from tests.support.prometheus import Prometheus, PrometheusConfig

CHECK_TIMEOUT = 120.0


def check(*args: str) -> tuple[int, dict[str, Any]]:
    """Run ``remote-storage check ... --json``; its exit status and its JSON report."""
    result = subprocess.run(
        [sys.executable, "-m", "remote_storage", "check", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {row["name"]: row["result"] for row in report["checks"]}


def assert_all_pass(status: int, report: dict[str, Any]) -> None:
    failed = {row["name"]: row["detail"] for row in report["checks"] if row["result"] != "pass"}
    assert failed == {}
    assert status == 0
    assert report["passed"] and report["strict"]
    assert len(report["checks"]) == report["counts"]["pass"] >= 30


def test_passes_on_the_memory_backend_twice(adapter: Callable[..., Adapter]) -> None:
    """Every row passes (strict), and a second run against the same store does not see the first."""
    service = adapter("memory://")
    first_status, first = check(service.url, "--strict")
    assert_all_pass(first_status, first)
    second_status, second = check(service.url, "--strict", "--tenant", "team-b")
    assert_all_pass(second_status, second)
    assert first["run_id"] != second["run_id"]


def test_passes_on_sql(adapter: Callable[..., Adapter], sql_storage_url: str) -> None:
    """SQLite and PostgreSQL: every row passes (strict), with separate write and read URLs."""
    service = adapter(sql_storage_url)
    status, report = check("--write-url", service.write_url, "--read-url", service.read_url, "--strict")
    assert_all_pass(status, report)


# What Prometheus 2.42 with --web.enable-remote-write-receiver does differently from this service.
PROMETHEUS_DIFFERENCES = {
    # no remote write 2.0: it parses the 2.0 body as an empty 1.0 request and answers 204
    "write 2.0": "unsupported",
    # its SAMPLES encoder drops -0 as a protobuf default, so it reads back as 0
    "read samples: -0 1.0 keeps its sign": "differs",
    # it answers 500 (which senders retry forever), not 400
    "write: duplicate label name -> 400": "differs",
    # it does not look at Content-Type
    "write: unknown Content-Type -> 415": "differs",
}


@pytest.mark.prometheus
def test_prometheus_passes_what_it_supports(prometheus: Callable[..., Prometheus]) -> None:
    server = prometheus("receiver", PrometheusConfig(scrape_interval="1m"), remote_write_receiver=True)
    status, report = check(server.url)
    expected = {}
    for name in outcomes(report):
        expected[name] = "unsupported" if " 2.0" in name else PROMETHEUS_DIFFERENCES.get(name, "pass")
    assert outcomes(report) == expected
    assert status == 0 and report["passed"]
    details = {row["name"]: row["detail"] for row in report["checks"]}
    assert "stored nothing" in details["write 2.0"]
    assert "answered 500" in details["write: duplicate label name -> 400"]
    strict_status, strict = check(server.url, "--strict")
    assert strict_status == 1 and not strict["passed"]


class NaNCanonicalizingStorage(MemoryStorage):
    """A real bug of real stores: every NaN read back as the one NaN, so the stale marker is lost."""

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        async for series in super().process_query(ctx, dataclasses.replace(query, accept_chunks=False)):
            values = [math.nan if math.isnan(v) else v for v in series.values]
            yield TimeSeries(series.labels, series.timestamps, values)


class OpenEndedStorage(MemoryStorage):
    """Another: a query's end is ignored, so samples after it come back too."""

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        async for series in super().process_query(ctx, dataclasses.replace(query, end_ms=2**62)):
            yield series


def check_in_process(storage: MemoryStorage) -> tuple[int, dict[str, Any]]:
    """Serve ``storage`` with the service's application in this process; run ``check`` against it."""

    async def scenario() -> tuple[int, dict[str, Any]]:
        server = TestServer(create_app(storage), host="127.0.0.1", port=free_port())
        async with server:
            process = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "remote_storage", "check", str(server.make_url("/")), "--json"],
                stdout=asyncio.subprocess.PIPE,
            )
            stdout, _ = await asyncio.wait_for(process.communicate(), CHECK_TIMEOUT)
            assert process.returncode is not None
            return process.returncode, json.loads(stdout)

    return asyncio.run(scenario())


def failed_rows(report: dict[str, Any]) -> dict[str, str]:
    return {row["name"]: row["detail"] for row in report["checks"] if row["result"] == "fail"}


def test_fails_against_a_store_that_loses_the_stale_marker() -> None:
    status, report = check_in_process(NaNCanonicalizingStorage())
    assert status == 1 and not report["passed"]
    failed = failed_rows(report)
    values = {
        f"read {kind}: values {p} bit-exact" for kind in ("samples", "streamed") for p in ("1.0", "2.0")
    }
    assert set(failed) == values | {
        "read samples: queries in request order",
        "read streamed: queries in request order",
    }
    for detail in failed.values():
        assert "0x7ff8000000000000, expected 0x7ff0000000000002 (the stale marker)" in detail


def test_fails_against_a_store_that_ignores_the_end_of_a_range() -> None:
    status, report = check_in_process(OpenEndedStorage())
    assert status == 1
    failed = failed_rows(report)
    # Streamed chunks may reach past the end (readers trim them), so only SAMPLES shows it:
    # in the range check, and in the empty query of the multi-query request.
    assert list(failed) == ["read samples: time range inclusive", "read samples: queries in request order"]
    assert "timestamps [" in failed["read samples: time range inclusive"]


def test_an_endpoint_that_does_not_answer_fails_every_row() -> None:
    status, report = check(f"http://127.0.0.1:{free_port()}", "--timeout", "5")
    assert status == 1
    results = outcomes(report)
    assert results["write 1.0"] == "fail"
    assert set(results.values()) == {"fail", "skipped"}  # rows after the first failure are not run
    assert "Connection refused" in report["checks"][0]["detail"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (
        ["--write-url", "http://127.0.0.1:1/api/v1/write"],  # no read URL
        ["ftp://127.0.0.1:1"],
        ["http://127.0.0.1:1", "--basic-auth", "user"],
        ["http://127.0.0.1:1", "--bearer-token-file", str(tmp_path / "missing")],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "remote_storage", "check", *args],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("remote-storage check: error: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_https_with_client_certificates_and_basic_auth(
    adapter: Callable[..., Adapter], tmp_path: Path
) -> None:
    """The TLS and credential options reach a service that requires all of them."""
    ca = CertificateAuthority(tmp_path, "check")
    server_pair, client_pair = ca.issue("server", ip="127.0.0.1"), ca.issue("prometheus", client=True)
    config = tmp_path / "auth.toml"
    config.write_text(f'[users.prometheus]\npassword_hash = "{hash_password(b"check me", 4)}"\n')
    password_file = tmp_path / "password"
    password_file.write_text("check me\n")
    tls = ["--tls-cert-file", str(server_pair.cert_file), "--tls-key-file", str(server_pair.key_file)]
    service = adapter(
        "memory://",
        extra_args=("--auth-config", str(config), *tls, "--tls-client-ca-file", str(ca.cert_file)),
        ssl_context=ca.client_context(client_pair),
    )
    client = ["--ca-file", str(ca.cert_file), "--cert-file", str(client_pair.cert_file)]
    client += ["--key-file", str(client_pair.key_file)]
    status, report = check(service.url, "--strict", *client, "--basic-auth", f"prometheus:{password_file}")
    assert_all_pass(status, report)
    status, report = check(service.url, *client)  # no credentials
    assert status == 1
    assert report["checks"][0]["detail"].startswith("answered 401")
    without_ca = client[2:]
    status, report = check(service.url, *without_ca, "--basic-auth", f"prometheus:{password_file}")
    assert status == 1
    assert "CERTIFICATE_VERIFY_FAILED" in report["checks"][0]["detail"]
    insecure = [*without_ca, "--insecure-skip-verify", "--basic-auth", f"prometheus:{password_file}"]
    status, report = check(service.url, "--strict", *insecure)
    assert_all_pass(status, report)


def test_every_option_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Checking an endpoint", 1)[1].split("\n## ", 1)[0]
    parser = argparse.ArgumentParser()
    configure(parser)
    options = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    assert len(options) > 10
    assert [o for o in options if f"`{o}" not in section and o != "--help"] == []

"""A real Prometheus writes to and reads from the adapter with credentials: basic auth, bearer, TLS.

In each mode Prometheus A scrapes itself and remote-writes through two
queues: "good" with the right credentials and "bad" with wrong ones (a
wrong password, an unknown token, a client certificate from another CA).
The bad queue's series carry ``queue="bad"``. Prometheus B, with the right
credentials, reads the range the good queue has sent through remote read and
must get exactly what A holds, and no series of the bad queue. The adapter
counts the refused requests (401) on its ``/metrics``; a client certificate
from another CA is refused in the TLS handshake, so there Prometheus' own
counters show the failures.
"""

from __future__ import annotations

import base64
import hashlib
import math
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from remote_storage.auth import hash_password
from tests.support.adapter import Adapter
from tests.support.certs import CertificateAuthority
from tests.support.net import Deadline, free_port, http_get, poll_until
from tests.support.prometheus import (
    ClientTLS,
    Prometheus,
    PrometheusConfig,
    diff_results,
    remote_read_from,
    remote_write_to,
    scrape_job,
    series_points,
)

pytestmark = pytest.mark.prometheus

TEST_TIMEOUT = 120.0
SCRAPES = 6
END_MARGIN = 2.0
TENANT = "team-a"


@dataclass
class Mode:
    """How the adapter is started and how each client authenticates."""

    adapter_args: tuple[str, ...]
    good: dict[str, Any]
    bad: dict[str, Any]
    ssl_context: ssl.SSLContext | None = None
    headers: dict[str, str] = field(default_factory=dict)
    refused_with_401: bool = True


def write_config(tmp_path: Path, text: str) -> tuple[str, ...]:
    path = tmp_path / "auth.toml"
    path.write_text(text)
    return ("--auth-config", str(path))


def basic_auth_mode(tmp_path: Path) -> Mode:
    password = "prometheus-password"
    config = (
        f'[users.prometheus]\npassword_hash = "{hash_password(password.encode(), 4)}"\ntenant = "{TENANT}"\n'
    )
    header = "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()
    return Mode(
        adapter_args=write_config(tmp_path, config),
        good={"basic_auth": ("prometheus", password)},
        bad={"basic_auth": ("prometheus", "not-the-password")},
        headers={"Authorization": header, "X-Scope-OrgID": TENANT},
    )


def bearer_mode(tmp_path: Path) -> Mode:
    token = "c2VjcmV0LXRva2VuLWZvci1wcm9tZXRoZXVzLXdyaXRlcnM"
    config = f'[tokens.prometheus]\nsha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
    return Mode(
        adapter_args=write_config(tmp_path, config),
        good={"bearer_token": token},
        bad={"bearer_token": token[:-1] + "x"},
        headers={"Authorization": f"Bearer {token}"},
    )


def tls_mode(tmp_path: Path) -> Mode:
    ca = CertificateAuthority(tmp_path, "test")
    server = ca.issue("server", ip="127.0.0.1")
    client = ca.issue("prometheus", client=True)
    rogue = CertificateAuthority(tmp_path, "rogue").issue("prometheus", client=True)
    return Mode(
        adapter_args=(
            "--tls-cert-file",
            str(server.cert_file),
            "--tls-key-file",
            str(server.key_file),
            "--tls-client-ca-file",
            str(ca.cert_file),
        ),
        good={"tls": ClientTLS(ca.cert_file, client.cert_file, client.key_file)},
        bad={"tls": ClientTLS(ca.cert_file, rogue.cert_file, rogue.key_file)},
        ssl_context=ca.client_context(client),
        refused_with_401=False,
    )


MODES: dict[str, Callable[[Path], Mode]] = {
    "basic_auth": basic_auth_mode,
    "authorization": bearer_mode,
    "tls_config": tls_mode,
}


@pytest.mark.parametrize("mode_name", list(MODES))
def test_prometheus_writes_and_reads_back_with_credentials(
    mode_name: str,
    tmp_path: Path,
    adapter: Callable[..., Adapter],
    prometheus: Callable[..., Prometheus],
) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    mode = MODES[mode_name](tmp_path)
    service = adapter("memory://", extra_args=mode.adapter_args, ssl_context=mode.ssl_context)
    bad_queue = remote_write_to(service.write_url, name="bad", **mode.bad)
    bad_queue["write_relabel_configs"] = [
        {"action": "replace", "target_label": "queue", "replacement": "bad"}
    ]
    port_a = free_port()
    writer = prometheus(
        "a",
        PrometheusConfig(
            scrape_configs=[scrape_job("prometheus", f"127.0.0.1:{port_a}")],
            remote_write=[remote_write_to(service.write_url, name="good", **mode.good), bad_queue],
        ),
        port=port_a,
        timeout=deadline.remaining(30),
    )

    last = wait_for_scrapes(writer, SCRAPES, deadline)
    end = last - END_MARGIN
    wait_until_sent(writer, "good", end, deadline)
    if mode.refused_with_401:
        poll_until(
            lambda: adapter_refusals(service, mode) or None,
            deadline.remaining(),
            "the adapter counting refused requests",
        )
    poll_until(
        lambda: queue_failures(writer, "bad") or None,
        deadline.remaining(),
        "Prometheus counting failed or retried samples of the bad queue",
    )

    reader = prometheus(
        "b",
        PrometheusConfig(remote_read=[remote_read_from(service.read_url, **mode.good)]),
        timeout=deadline.remaining(30),
    )
    raw = '{__name__=~".+"}[1h]'
    expected = writer.query(raw, end)
    got = reader.query(raw, end)
    assert len(series_points(expected)) > 10, f"too few series on A: {expected}"
    assert diff_results(expected, got) == [], "B (remote read) differs from A (local TSDB)"
    assert series_points(reader.query('{queue="bad"}', end)) == {}, "a refused queue's samples were stored"


def wait_for_scrapes(writer: Prometheus, count: int, deadline: Deadline) -> float:
    """Wait until A holds ``count`` samples of its own ``up``; the time of the newest."""

    def check() -> float | None:
        result = series_points(writer.query('up{job="prometheus"}[5m]'))
        points = next(iter(result.values()), [])
        return points[-1][0] if len(points) >= count else None

    return poll_until(check, deadline.remaining(), f"{count} scrapes on A")


def prometheus_metrics(url: str, **options: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = http_get(f"{url}/metrics", timeout=10, **options)
    assert status == 200, f"{url}/metrics answered HTTP {status}: {body[:200]!r}"
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return values


def queue_value(writer: Prometheus, name: str, queue: str) -> float:
    found = [
        value
        for (sample, labels), value in prometheus_metrics(writer.url).items()
        if sample == name and ("remote_name", queue) in labels
    ]
    return sum(found)


def wait_until_sent(writer: Prometheus, queue: str, until: float, deadline: Deadline) -> None:
    """Wait until ``queue`` has had samples up to ``until`` acknowledged (one shard: in order)."""
    name = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"

    def check() -> float | None:
        sent = queue_value(writer, name, queue)
        return sent if sent >= math.ceil(until) else None

    poll_until(check, deadline.remaining(), f"{name}{{remote_name={queue!r}}} >= {until:.3f} on A")


def queue_failures(writer: Prometheus, queue: str) -> float:
    """Samples of ``queue`` that Prometheus dropped after a refusal or retried after an error."""
    return queue_value(writer, "prometheus_remote_storage_samples_failed_total", queue) + queue_value(
        writer, "prometheus_remote_storage_samples_retried_total", queue
    )


def adapter_refusals(service: Adapter, mode: Mode) -> float:
    values: Mapping[tuple[str, tuple[tuple[str, str], ...]], float] = prometheus_metrics(
        service.url, context=mode.ssl_context, headers=mode.headers
    )
    return values.get(("remote_storage_auth_rejected_requests_total", (("reason", "invalid"),)), 0.0)

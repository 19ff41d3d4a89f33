"""A real Prometheus for integration tests, and helpers for its HTTP API.

The configuration is written as JSON, which YAML parsers (Prometheus' among
them) read as YAML, so no YAML library is needed::

    config = PrometheusConfig(
        scrape_configs=[scrape_job("self", f"127.0.0.1:{port}")],
        remote_write=[remote_write_to("http://127.0.0.1:9201/api/v1/write")],
    )
    prom = start_prometheus(processes, binary, tmp_path, "a", config, port=port)
    prom.wait_ready(30)
    prom.query_range("up", start, end, step=1)
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .net import free_port, http_get, wait_http_ok
from .procs import ManagedProcess, Processes

__all__ = [
    "ClientTLS",
    "Labels",
    "Points",
    "Prometheus",
    "PrometheusAPIError",
    "PrometheusConfig",
    "diff_results",
    "http_client_options",
    "remote_read_from",
    "remote_write_to",
    "scrape_job",
    "series_points",
    "start_prometheus",
]

Labels = tuple[tuple[str, str], ...]
"""A series' label set, sorted by name: hashable and comparable."""
Points = list[tuple[float, str]]
"""(timestamp in seconds, value as the API renders it) pairs."""

API_TIMEOUT = 30.0


class PrometheusAPIError(AssertionError):
    """The HTTP API answered with an error (bad PromQL, a failed remote read, ...)."""


def scrape_job(
    name: str,
    target: str,
    *,
    metrics_path: str = "/metrics",
    interval: str | None = None,
) -> dict[str, Any]:
    """One ``scrape_configs`` entry with a single static ``host:port`` target."""
    job: dict[str, Any] = {
        "job_name": name,
        "metrics_path": metrics_path,
        "static_configs": [{"targets": [target]}],
    }
    if interval is not None:
        job["scrape_interval"] = interval
        job["scrape_timeout"] = interval
    return job


@dataclass(frozen=True)
class ClientTLS:
    """A ``tls_config`` block: the CA to trust, and the client certificate to present if any."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    def to_dict(self) -> dict[str, str]:
        config = {"ca_file": str(self.ca_file)}
        if self.cert_file is not None and self.key_file is not None:
            config["cert_file"] = str(self.cert_file)
            config["key_file"] = str(self.key_file)
        return config


def http_client_options(
    *,
    name: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    bearer_token: str | None = None,
    tls: ClientTLS | None = None,
) -> dict[str, Any]:
    """The HTTP client settings of a remote-write or remote-read entry; empty when none is given.

    ``name`` becomes ``remote_name`` in Prometheus' queue metrics.
    """
    options: dict[str, Any] = {}
    if name is not None:
        options["name"] = name
    if basic_auth is not None:
        options["basic_auth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    if bearer_token is not None:
        options["authorization"] = {"type": "Bearer", "credentials": bearer_token}
    if tls is not None:
        options["tls_config"] = tls.to_dict()
    return options


def remote_write_to(
    url: str,
    *,
    batch_send_deadline: str = "1s",
    max_shards: int = 1,
    name: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    bearer_token: str | None = None,
    tls: ClientTLS | None = None,
    **queue_config: Any,
) -> dict[str, Any]:
    """A ``remote_write`` entry that sends within ``batch_send_deadline``.

    One shard by default: samples then arrive in the order Prometheus
    appended them, so "the highest timestamp sent" bounds what has arrived.
    ``name``, ``basic_auth``, ``bearer_token`` and ``tls``: see
    :func:`http_client_options`; other keyword arguments go to ``queue_config``.
    """
    return {
        "url": url,
        **http_client_options(name=name, basic_auth=basic_auth, bearer_token=bearer_token, tls=tls),
        "queue_config": {
            "batch_send_deadline": batch_send_deadline,
            "max_shards": max_shards,
            "min_backoff": "10ms",
            "max_backoff": "1s",
            "retry_on_http_429": True,  # the service answers 429 under load (see README)
            **queue_config,
        },
    }


def remote_read_from(
    url: str,
    *,
    read_recent: bool = True,
    basic_auth: tuple[str, str] | None = None,
    bearer_token: str | None = None,
    tls: ClientTLS | None = None,
    **options: Any,
) -> dict[str, Any]:
    """A ``remote_read`` entry; ``read_recent`` so that every query reaches it.

    ``basic_auth``, ``bearer_token`` and ``tls``: see :func:`http_client_options`.
    """
    client = http_client_options(basic_auth=basic_auth, bearer_token=bearer_token, tls=tls)
    return {"url": url, "read_recent": read_recent, **client, **options}


@dataclass
class PrometheusConfig:
    """The parts of ``prometheus.yml`` tests vary; rendered by ``render()``."""

    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    remote_write: list[dict[str, Any]] = field(default_factory=list)
    remote_read: list[dict[str, Any]] = field(default_factory=list)
    external_labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                # Prometheus rejects a timeout longer than the interval, and
                # its default timeout (10s) is longer than test intervals.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
                "external_labels": self.external_labels,
            },
            "scrape_configs": self.scrape_configs,
        }
        if self.remote_write:
            config["remote_write"] = self.remote_write
        if self.remote_read:
            config["remote_read"] = self.remote_read
        return config

    def render(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


class Prometheus:
    """A started Prometheus server and a client for its HTTP API."""

    def __init__(self, name: str, process: ManagedProcess, port: int, home: Path) -> None:
        self.name = name
        self.process = process
        self.port = port
        self.home = home
        self.address = f"127.0.0.1:{port}"
        self.url = f"http://{self.address}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``/-/ready`` until 200; fail early with the log if Prometheus exits."""
        wait_http_ok(f"{self.url}/-/ready", timeout, alive=self.process.check_alive)

    def api(self, path: str, params: Mapping[str, str]) -> Any:
        """POST form ``params`` to ``/api/v1/<path>`` and return the ``data`` member."""
        url = f"{self.url}/api/v1/{path}"
        body = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read().decode("utf-8", "replace")
            raise PrometheusAPIError(
                f"{self.name}: {path} {dict(params)} answered HTTP {exc.code}: {text}"
            ) from None
        except OSError as exc:
            self.process.check_alive()
            raise PrometheusAPIError(f"{self.name}: {path} {dict(params)} failed: {exc}") from exc
        if payload.get("status") != "success":
            raise PrometheusAPIError(f"{self.name}: {path} {dict(params)} answered {payload}")
        return payload["data"]

    def query(self, promql: str, time: float | None = None) -> dict[str, Any]:
        """``/api/v1/query``: ``{"resultType": ..., "result": ...}``."""
        params = {"query": promql}
        if time is not None:
            params["time"] = _seconds(time)
        result: dict[str, Any] = self.api("query", params)
        return result

    def query_range(self, promql: str, start: float, end: float, step: float) -> dict[str, Any]:
        """``/api/v1/query_range``: a matrix, one point per ``step`` seconds."""
        params = {
            "query": promql,
            "start": _seconds(start),
            "end": _seconds(end),
            "step": _seconds(step),
        }
        result: dict[str, Any] = self.api("query_range", params)
        return result

    def metric_values(self, name: str) -> list[float]:
        """Values of every sample named ``name`` on the server's own ``/metrics`` page.

        Read from the page, not through PromQL, so it is current, not one
        scrape behind.
        """
        status, body = http_get(f"{self.url}/metrics", timeout=API_TIMEOUT)
        if status != 200:
            raise PrometheusAPIError(f"{self.name}: /metrics answered HTTP {status}")
        values = []
        for line in body.decode().splitlines():
            if line.startswith((f"{name} ", f"{name}{{")):
                values.append(float(line.rsplit(" ", 1)[1]))
        return values

    def version(self) -> str:
        data: dict[str, str] = self.api_get("status/buildinfo")
        return data["version"]

    def api_get(self, path: str) -> Any:
        status, body = http_get(f"{self.url}/api/v1/{path}", timeout=API_TIMEOUT)
        payload = json.loads(body)
        if status != 200 or payload.get("status") != "success":
            raise PrometheusAPIError(f"{self.name}: GET {path} answered HTTP {status}: {payload}")
        return payload["data"]


def start_prometheus(
    processes: Processes,
    binary: str,
    workdir: Path,
    name: str,
    config: PrometheusConfig,
    *,
    port: int | None = None,
    remote_write_receiver: bool = False,
    extra_args: Sequence[str] = (),
) -> Prometheus:
    """Start Prometheus in ``workdir/name`` on 127.0.0.1; does not wait for it.

    Pass ``port`` when the configuration must name the server's own address
    (a self-scrape); otherwise a free one is picked.
    """
    port = free_port() if port is None else port
    home = workdir / name
    home.mkdir(parents=True)
    config_file = home / "prometheus.yml"
    config_file.write_text(config.render())
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=info",
    ]
    if remote_write_receiver:
        argv.append("--web.enable-remote-write-receiver")
    argv.extend(extra_args)
    process = processes.start(name, argv, cwd=home)
    return Prometheus(name, process, port, home)


def series_points(data: Mapping[str, Any]) -> dict[Labels, Points]:
    """The series of a query result keyed by label set, with their points.

    Accepts matrix, vector and scalar results. Values stay the strings the
    API sent ("NaN", "+Inf", "0.30000000000000004"), so comparing them is
    exact and NaN equals NaN.
    """
    kind = data["resultType"]
    result = data["result"]
    if kind == "scalar":
        return {(): [(float(result[0]), result[1])]}
    series: dict[Labels, Points] = {}
    for item in result:
        labels: Labels = tuple(sorted(item["metric"].items()))
        if labels in series:
            raise AssertionError(f"series {labels} appears twice in one result")
        if kind == "matrix":
            series[labels] = [(float(ts), value) for ts, value in item["values"]]
        elif kind == "vector":
            series[labels] = [(float(item["value"][0]), item["value"][1])]
        else:
            raise AssertionError(f"unexpected result type {kind!r}")
    return series


def diff_results(expected: Mapping[str, Any], actual: Mapping[str, Any], *, limit: int = 10) -> list[str]:
    """Readable differences between two query results; empty when identical."""
    if expected["resultType"] != actual["resultType"]:
        return [f"result type {expected['resultType']} != {actual['resultType']}"]
    want, got = series_points(expected), series_points(actual)
    problems: list[str] = []
    for labels in sorted(want.keys() - got.keys()):
        problems.append(f"missing series {_fmt(labels)} ({len(want[labels])} points)")
    for labels in sorted(got.keys() - want.keys()):
        problems.append(f"unexpected series {_fmt(labels)} ({len(got[labels])} points)")
    for labels in sorted(want.keys() & got.keys()):
        a, b = want[labels], got[labels]
        if a == b:
            continue
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        problems.append(
            f"series {_fmt(labels)}: {len(a)} vs {len(b)} points, first difference at "
            f"index {first}: {a[first] if first < len(a) else None} "
            f"vs {b[first] if first < len(b) else None}"
        )
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more"]
    return problems


def _fmt(labels: Labels) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in labels) + "}"


def _seconds(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"not a finite time: {value}")
    return f"{value:.3f}"

"""Pushing a registry to a Prometheus Pushgateway, with ``prometheus_client``'s functions and arguments.

    >>> from remote_storage.instrument import CollectorRegistry, Gauge, push_to_gateway
    >>> registry = CollectorRegistry()
    >>> g = Gauge("job_last_success_unixtime", "Last time the job succeeded.", registry=registry)
    >>> g.set_to_current_time()
    >>> push_to_gateway("localhost:9091", job="batch", registry=registry)  # doctest: +SKIP

The Pushgateway's protocol: the registry in the text format 0.0.4 goes to
``<gateway>/metrics/job/<job>[/<label>/<value>...]`` (the grouping key);
``PUT`` (:func:`push_to_gateway`) replaces every metric of the group,
``POST`` (:func:`pushadd_to_gateway`) only those with the names pushed, and
``DELETE`` (:func:`delete_from_gateway`) removes the group. A value that is
empty or holds a ``/`` travels base64url-encoded (``<label>@base64/<value>``).
A gateway without a scheme gets ``http://``. An answer outside 2xx raises
:class:`PushgatewayError` (an ``OSError``, as ``prometheus_client``'s
``IOError``), so is a failure to connect.

For pushing over remote write instead (to this service, to Prometheus'
receiver, ...) see :mod:`remote_storage.instrument.pusher`.
"""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote

from remote_storage.instrument.exposition import CONTENT_TYPE_LATEST, generate_latest
from remote_storage.instrument.registry import REGISTRY, Collector

__all__ = [
    "Handler",
    "PushgatewayError",
    "basic_auth_handler",
    "default_handler",
    "delete_from_gateway",
    "gateway_url",
    "instance_ip_grouping_key",
    "push_to_gateway",
    "pushadd_to_gateway",
]

Handler = Callable[[str, str, float | None, Sequence[tuple[str, str]], bytes], Callable[[], None]]
"""``handler(url, method, timeout, headers, data)`` returns a function that sends the request.

The same contract as ``prometheus_client``'s handlers, so custom ones (auth,
TLS, proxies) move over too.
"""
_BODY_IN_ERRORS = 300


class PushgatewayError(OSError):
    """The Pushgateway answered outside 2xx (``status`` set), or could not be reached (``status`` None)."""

    def __init__(self, url: str, method: str, status: int | None, reason: str) -> None:
        self.url = url
        self.method = method
        self.status = status
        self.reason = reason
        answer = f"answered {status}: {reason}" if status is not None else f"failed: {reason}"
        super().__init__(f"{method} {url} {answer}")


def default_handler(
    url: str, method: str, timeout: float | None, headers: Sequence[tuple[str, str]], data: bytes
) -> Callable[[], None]:
    """Send the request with ``urllib``; raise :class:`PushgatewayError` unless the answer is 2xx."""

    def send() -> None:
        request = urllib.request.Request(url, data=data or None, method=method)
        for name, value in headers:
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read(_BODY_IN_ERRORS).decode("utf-8", "replace").strip()
            raise PushgatewayError(url, method, exc.code, text or str(exc.reason)) from None
        except OSError as exc:
            raise PushgatewayError(url, method, None, str(getattr(exc, "reason", exc))) from None

    return send


def basic_auth_handler(
    url: str,
    method: str,
    timeout: float | None,
    headers: Sequence[tuple[str, str]],
    data: bytes,
    username: str | None = None,
    password: str | None = None,
) -> Callable[[], None]:
    """:func:`default_handler` with HTTP basic auth (bind ``username`` and ``password`` with a lambda)."""
    if username is not None and password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        headers = [*headers, ("Authorization", f"Basic {token}")]
    return default_handler(url, method, timeout, headers, data)


def _segment(name: str, value: str) -> str:
    if not value:
        return f"{name}@base64/="
    if "/" in value:
        return f"{name}@base64/{base64.urlsafe_b64encode(value.encode()).decode()}"
    return f"{name}/{quote(value, safe='')}"


def gateway_url(gateway: str, job: str, grouping_key: Mapping[str, object] | None = None) -> str:
    """The URL of the group ``job`` + ``grouping_key`` on ``gateway``."""
    if not gateway.startswith(("http://", "https://")):
        gateway = f"http://{gateway}"
    key = {"job": job, **(grouping_key or {})}
    path = "/".join(_segment(name, str(value)) for name, value in key.items())
    return f"{gateway.rstrip('/')}/metrics/{path}"


def _send(
    method: str,
    gateway: str,
    job: str,
    registry: Collector | None,
    grouping_key: Mapping[str, object] | None,
    timeout: float | None,
    handler: Handler,
) -> None:
    data = generate_latest(registry) if registry is not None else b""
    headers = [("Content-Type", CONTENT_TYPE_LATEST)] if registry is not None else []
    handler(gateway_url(gateway, job, grouping_key), method, timeout, headers, data)()


def push_to_gateway(
    gateway: str,
    job: str,
    registry: Collector = REGISTRY,
    grouping_key: Mapping[str, object] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """``PUT`` ``registry`` to the group: every metric of the group is replaced by those pushed."""
    _send("PUT", gateway, job, registry, grouping_key, timeout, handler)


def pushadd_to_gateway(
    gateway: str,
    job: str,
    registry: Collector = REGISTRY,
    grouping_key: Mapping[str, object] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """``POST`` ``registry`` to the group: only the metrics with the names pushed are replaced."""
    _send("POST", gateway, job, registry, grouping_key, timeout, handler)


def delete_from_gateway(
    gateway: str,
    job: str,
    grouping_key: Mapping[str, object] | None = None,
    timeout: float | None = 30,
    handler: Handler = default_handler,
) -> None:
    """``DELETE`` the group from the gateway."""
    _send("DELETE", gateway, job, None, grouping_key, timeout, handler)


def instance_ip_grouping_key() -> dict[str, str]:
    """``{"instance": <address>}``: the local address of a socket aimed at ``localhost``.

    The same key ``prometheus_client`` computes (usually ``127.0.0.1``).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("localhost", 0))
        address: str = probe.getsockname()[0]
    return {"instance": address}

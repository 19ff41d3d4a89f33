"""``prometheus_client``'s documented examples run on remote_storage.instrument with only the import changed.

Each example is written as its documentation shows it (a free loopback port
instead of 8000 or 9091, and a bounded loop instead of ``while True``) and
run in a fresh interpreter twice: importing ``prometheus_client``, then
``remote_storage.instrument``. What each exposes is parsed with
``prometheus_client``'s own parser and must be the same (``_created``
series aside: the text format 0.0.4 here leaves them out, ``prometheus_client``
writes them as gauges of their own; and the default
registries' process and Python runtime metrics differ by design).
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from remote_storage.instrument import (
    CollectorRegistry,
    Counter,
    Gauge,
    MetricsExporter,
    PushgatewayError,
    delete_from_gateway,
    make_asgi_app,
    push_to_gateway,
    pushadd_to_gateway,
    start_http_server,
)
from remote_storage.instrument.pushgateway import gateway_url
from tests.support.net import free_port, http_get, wait_http_ok
from tests.support.procs import Processes
from tests.support.system import ensure_debian_package

CLIENT = "prometheus_client"
OURS = "remote_storage.instrument"
RUN_TIMEOUT = 60.0
# Families of the default registries that are not the example's.
RUNTIME_PREFIXES = ("process_", "python_")

Families = dict[str, tuple[str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]


def run_example(source: str, module: str, **values: object) -> str:
    """Run ``source`` (with ``prometheus_client`` replaced by ``module``) in a fresh interpreter."""
    code = textwrap.dedent(source).replace(CLIENT, module).format(**values)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, f"{module}: {result.stderr}"
    return result.stdout


def families(text: str, *, openmetrics: bool = False, drop_values: tuple[str, ...] = ()) -> Families:
    """Parsed exposition: name -> (type, help, sorted samples); values of ``drop_values`` samples as -1."""
    parsed: Families = {}
    for family in (parse_openmetrics if openmetrics else parse_text)(text):
        if family.name.startswith(RUNTIME_PREFIXES) or family.name.endswith("_created"):
            continue
        samples = sorted(
            (s.name, tuple(sorted(s.labels.items())), -1.0 if s.name in drop_values else s.value)
            for s in family.samples
            if not s.name.endswith("_created")
        )
        parsed[family.name] = (family.type, family.documentation, samples)
    return parsed


def both(source: str, **values: object) -> tuple[str, str]:
    return run_example(source, CLIENT, **values), run_example(source, OURS, **values)


# The README's "Instrumenting" section, every type, with and without labels.
METRIC_TYPES = """
from prometheus_client import Counter, Enum, Gauge, Histogram, Info, Summary

c = Counter('my_failures', 'Description of counter')
c.inc()     # Increment by 1
c.inc(1.6)  # Increment by given value

g = Gauge('my_inprogress_requests', 'Description of gauge')
g.inc()      # Increment by 1
g.dec(10)    # Decrement by given value
g.set(4.2)   # Set to a given value

d = Gauge('data_objects', 'Number of objects')
my_dict = {{'a': 1, 'b': 2}}
d.set_function(lambda: len(my_dict))

s = Summary('request_latency_seconds', 'Description of summary')
s.observe(4.7)    # Observe 4.7 (seconds in this case)

h = Histogram('request_size_bytes', 'Description of histogram', buckets=[100, 1000, 10000])
h.observe(4.7)
h.observe(2500)

i = Info('my_build_version', 'Description of info')
i.info({{'version': '1.2.3', 'buildhost': 'foo@bar'}})

e = Enum('my_task_state', 'Description of enum', states=['starting', 'running', 'stopped'])
e.state('running')

r = Counter('my_requests_total', 'HTTP Failures', ['method', 'endpoint'])
r.labels('get', '/').inc()
r.labels(method='post', endpoint='/submit').inc()

from prometheus_client import generate_latest
print(generate_latest().decode(), end='')
"""


def test_metric_types_with_labels_and_generate_latest() -> None:
    theirs, ours = both(METRIC_TYPES)
    expected = families(theirs)
    assert len(expected) == 8
    assert families(ours) == expected


# The README's "Three Step Demo", with a free loopback port and five requests instead of forever.
THREE_STEP_DEMO = """
from prometheus_client import start_http_server, Summary
import random
import time

# Create a metric to track time spent and requests made.
REQUEST_TIME = Summary('request_processing_seconds', 'Time spent processing request')

# Decorate function with metric.
@REQUEST_TIME.time()
def process_request(t):
    \"\"\"A dummy function that takes some time.\"\"\"
    time.sleep(t)

if __name__ == '__main__':
    # Start up the server to expose the metrics.
    start_http_server({port}, addr='127.0.0.1')
    # Generate some requests.
    for _ in range(5):
        process_request(random.random() / 100)

    import urllib.request
    print(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=10).read().decode(), end='')
"""


def test_start_http_server_demo() -> None:
    theirs = run_example(THREE_STEP_DEMO, CLIENT, port=free_port())
    ours = run_example(THREE_STEP_DEMO, OURS, port=free_port())
    drop = ("request_processing_seconds_sum",)  # the time slept
    expected = families(theirs, drop_values=drop)
    assert expected["request_processing_seconds"][2][0] == ("request_processing_seconds_count", (), 5.0)
    assert families(ours, drop_values=drop) == expected


# The README's "Node exporter textfile collector" example.
TEXTFILE = """
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

registry = CollectorRegistry()
g = Gauge('raid_status', '1 if raid array is okay', registry=registry)
g.set(1)
write_to_textfile({path!r}, registry)
"""


def test_write_to_textfile(tmp_path: Path) -> None:
    theirs_path, ours_path = tmp_path / "theirs" / "raid.prom", tmp_path / "ours" / "raid.prom"
    for path, module in ((theirs_path, CLIENT), (ours_path, OURS)):
        path.parent.mkdir()
        path.write_text("old contents\n")
        run_example(TEXTFILE, module, path=str(path))
    assert ours_path.read_bytes() == theirs_path.read_bytes()
    assert b"raid_status 1.0\n" in ours_path.read_bytes()
    assert [p.name for p in ours_path.parent.iterdir()] == ["raid.prom"]  # no temporary file left


# The README's WSGI example, served by wsgiref on a free loopback port; a
# thread scrapes it three ways (plain, filtered by name, gzip) and stops it.
WSGI = """
import gzip, sys, threading, time, urllib.request
from prometheus_client import Counter
Counter('served', 'Requests served.', ['code']).labels('200').inc(3)
Counter('other', 'Not asked for.').inc()

def scrape_then_stop():
    urls = [('http://127.0.0.1:{port}/metrics', {{}}),
            ('http://127.0.0.1:{port}/?name[]=served_total', {{}}),
            ('http://127.0.0.1:{port}/metrics', {{'Accept-Encoding': 'gzip'}})]
    deadline = time.monotonic() + 30
    for url, headers in urls:
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
                    body = r.read()
                    if r.headers.get('Content-Encoding') == 'gzip':
                        body = gzip.decompress(body)
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        sys.stdout.write(body.decode() + '\\n=====\\n')
    httpd.shutdown()

threading.Thread(target=scrape_then_stop, daemon=True).start()

from prometheus_client import make_wsgi_app
from wsgiref.simple_server import make_server

app = make_wsgi_app()
httpd = make_server('127.0.0.1', {port}, app)
httpd.serve_forever()
"""


def test_make_wsgi_app_served_by_wsgiref() -> None:
    theirs = run_example(WSGI, CLIENT, port=free_port()).split("\n=====\n")[:3]
    ours = run_example(WSGI, OURS, port=free_port()).split("\n=====\n")[:3]
    for their_body, our_body in zip(theirs, ours, strict=True):
        assert families(our_body) == families(their_body)
    assert set(families(ours[1])) == {"served"}
    assert "other" in families(ours[0])


def asgi_get(
    app: Any, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
    """One GET through an ASGI application, as an ASGI server would make it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/metrics",
        "raw_path": b"/metrics",
        "query_string": query,
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent
    return start["status"], body["body"]


def test_make_asgi_app_answers_as_prometheus_client_does() -> None:
    import prometheus_client

    theirs = prometheus_client.CollectorRegistry()
    ours = CollectorRegistry()
    for module, registry in ((prometheus_client, theirs), (sys.modules[OURS], ours)):
        module.Counter("jobs", "Jobs done.", ["queue"], registry=registry).labels("mail").inc(2)
        module.Gauge("queue_depth", "Items waiting.", registry=registry).set(7)
    openmetrics = [(b"accept", b"application/openmetrics-text; version=1.0.0")]
    for query, headers, is_openmetrics in (
        (b"", [], False),
        (b"name[]=queue_depth", [], False),
        (b"", openmetrics, True),
    ):
        their_status, their_body = asgi_get(prometheus_client.make_asgi_app(theirs), query, headers)
        our_status, our_body = asgi_get(make_asgi_app(ours), query, headers)
        assert our_status == their_status == 200
        expected = families(their_body.decode(), openmetrics=is_openmetrics)
        assert families(our_body.decode(), openmetrics=is_openmetrics) == expected
    status, body = asgi_get(make_asgi_app(ours), headers=[(b"accept-encoding", b"gzip")])
    assert status == 200 and b"queue_depth 7.0" in gzip.decompress(body)


@pytest.fixture
def pushgateway(processes: Processes, tmp_path: Path) -> str:
    """A real Pushgateway (Debian package ``prometheus-pushgateway``) on a free loopback port."""
    binary = ensure_debian_package("prometheus-pushgateway", "prometheus-pushgateway")
    address = f"127.0.0.1:{free_port()}"
    argv = [binary, f"--web.listen-address={address}", f"--persistence.file={tmp_path / 'pushgateway.data'}"]
    process = processes.start("pushgateway", argv)
    wait_http_ok(f"http://{address}/-/ready", 30.0, alive=process.check_alive)
    return address


# The Pushgateway example of the documentation, pushing to the gateway given.
PUSH = """
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

registry = CollectorRegistry()
g = Gauge('job_last_success_unixtime', 'Last time a batch job successfully finished', registry=registry)
g.set_to_current_time()
push_to_gateway({gateway!r}, job='batchA', registry=registry)
"""


def gateway_samples(address: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    status, body = http_get(f"http://{address}/metrics", timeout=10)
    assert status == 200
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in parse_text(body.decode())
        for s in family.samples
        if s.name == name
    }


def test_push_to_gateway_example(pushgateway: str) -> None:
    seen = []
    for module in (CLIENT, OURS):
        before = time.time()
        run_example(PUSH, module, gateway=pushgateway)
        samples = gateway_samples(pushgateway, "job_last_success_unixtime")
        assert list(samples) == [(("instance", ""), ("job", "batchA"))]
        assert before - 1 <= next(iter(samples.values())) <= time.time() + 1
        seen.append(samples.keys())
    assert seen[0] == seen[1]


def test_grouping_keys_pushadd_and_delete(pushgateway: str) -> None:
    registry = CollectorRegistry()
    Gauge("files_backed_up", "Files in the last backup.", registry=registry).set(12)
    key = {"instance": "db-1", "path": "/var/lib/data"}  # a '/' travels base64-encoded
    assert "path@base64/" in gateway_url(pushgateway, "backup", key)
    push_to_gateway(pushgateway, job="backup", registry=registry, grouping_key=key)
    labels = (("instance", "db-1"), ("job", "backup"), ("path", "/var/lib/data"))
    assert gateway_samples(pushgateway, "files_backed_up") == {labels: 12.0}

    more = CollectorRegistry()
    Counter("bytes_backed_up", "Bytes in the last backup.", registry=more).inc(4096)
    pushadd_to_gateway(pushgateway, job="backup", registry=more, grouping_key=key)  # POST keeps the gauge
    assert gateway_samples(pushgateway, "files_backed_up") == {labels: 12.0}
    assert gateway_samples(pushgateway, "bytes_backed_up_total") == {labels: 4096.0}
    push_to_gateway(pushgateway, job="backup", registry=more, grouping_key=key)  # PUT replaces the group
    assert gateway_samples(pushgateway, "files_backed_up") == {}

    delete_from_gateway(pushgateway, job="backup", grouping_key=key)
    assert gateway_samples(pushgateway, "bytes_backed_up_total") == {}

    with pytest.raises(PushgatewayError, match="answered 400: job name is required") as refused:
        push_to_gateway(pushgateway, job="", registry=registry)  # travels as job@base64/=
    assert refused.value.status == 400 and isinstance(refused.value, OSError)
    with pytest.raises(PushgatewayError, match="failed: ") as unreachable:
        push_to_gateway(f"127.0.0.1:{free_port()}", job="backup", registry=registry, timeout=5)
    assert unreachable.value.status is None


def test_an_int_port_is_a_listen_address() -> None:
    """``start_metrics_server(9464)`` (the reported AttributeError): a bare port means all interfaces."""
    exporter = MetricsExporter(9464)
    assert (exporter.host, exporter.port) == ("0.0.0.0", 9464)
    assert (MetricsExporter("9464").host, MetricsExporter(":9464").host) == ("0.0.0.0", "0.0.0.0")
    with pytest.raises(ValueError, match="invalid port 70000"):
        MetricsExporter(70000)


def test_start_http_server_returns_server_and_thread() -> None:
    registry = CollectorRegistry()
    Gauge("up_and_running", "1 while running.", registry=registry).set(1)
    server, thread = start_http_server(free_port(), addr="127.0.0.1", registry=registry)
    try:
        assert thread.daemon and thread.is_alive()
        for path in ("/", "/metrics", "/anything"):
            status, body = http_get(f"http://127.0.0.1:{server.service.port}{path}", timeout=10)
            assert (status, b"up_and_running 1.0\n" in body) == (200, True)
    finally:
        server.shutdown()
    thread.join(10)
    assert not thread.is_alive()


def test_collector_registry_takes_prometheus_clients_arguments() -> None:
    class NoDescribe:
        def __init__(self) -> None:
            self.collected = 0

        def collect(self) -> list[Any]:
            self.collected += 1
            return []

    lazy, eager = NoDescribe(), NoDescribe()
    CollectorRegistry().register(lazy)  # auto_describe=False: not collected to learn its names
    CollectorRegistry(auto_describe=True).register(eager)
    assert (lazy.collected, eager.collected) == (0, 1)
    registry = CollectorRegistry(target_info={"env": "prod"})
    assert registry.get_sample_value("target_info", {"env": "prod"}) == 1.0

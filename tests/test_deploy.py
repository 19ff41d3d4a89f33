"""Every file in ``deploy/`` checked with the real tools where this machine has them.

* Prometheus configurations: ``promtool check config`` (Debian ``prometheus``).
* The systemd unit: ``systemd-analyze verify`` and an offline security
  review whose exposure must stay at "OK" (Debian ``systemd``).
* The compose file, Grafana's provisioning and the dashboard: parsed, their
  references followed (files, mounts, service names), every PromQL
  expression of the dashboard checked by promtool, and every metric it
  names served by the service's ``/metrics``.
* The Dockerfile: no Docker engine runs here, so it is not built; its
  structure is checked instead (stages, unprivileged user, health check,
  every copied path present).
* The service's flags in the unit, the compose file and the Dockerfile are
  parsed by the service's own command line, so a renamed flag fails here.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from remote_storage.backends.memory import MemoryStorage
from remote_storage.cli import build_parser
from remote_storage.server import create_app
from tests.support.system import ensure_debian_package
from tests.support.wire import V1_HEADERS, series, v1_body

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "remote-storage.json"
CHECKED = {
    "Dockerfile",
    "docker-compose.yml",
    "prometheus.yml",
    "remote-storage.service",
    "compose/prometheus.yml",
    "grafana/provisioning/datasources/prometheus.yml",
    "grafana/provisioning/dashboards/remote-storage.yml",
    "grafana/dashboards/remote-storage.json",
}


def test_every_file_in_deploy_is_checked_here() -> None:
    present = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    assert present == CHECKED, "a file in deploy/ without a check in this module, or a check without its file"


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_debian_package("prometheus", "promtool")


@pytest.mark.parametrize("config", ["prometheus.yml", "compose/prometheus.yml"])
def test_prometheus_configs_pass_promtool(promtool: str, config: str) -> None:
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def serve_argv(text: str) -> list[str]:
    """The arguments after ``remote-storage serve`` in a command line."""
    words = shlex.split(text)
    index = words.index("serve")
    return words[index + 1 :]


def check_serve_flags(argv: list[str]) -> None:
    build_parser().parse_args(["serve", *argv])  # exits (SystemExit) on an unknown flag


@pytest.fixture(scope="module")
def unit() -> str:
    return (DEPLOY / "remote-storage.service").read_text()


def test_systemd_unit_verifies_and_is_hardened(unit: str, tmp_path: Path) -> None:
    analyze = ensure_debian_package("systemd", "systemd-analyze")
    [exec_start] = re.findall(r"^ExecStart=(.+)$", unit, re.MULTILINE)
    installed = exec_start.split()[0]
    assert installed == "/opt/remote-storage/bin/remote-storage"  # the path the unit's comment installs to
    check_serve_flags(serve_argv(exec_start))
    # verify needs the program to exist: point it at this environment's entry point
    entry = Path(build_entry_point())
    copy = tmp_path / "remote-storage.service"
    copy.write_text(unit.replace(installed, str(entry)))
    verify = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # exposure on systemd's 0-10 scale, times ten: "OK" is below 2.0 (20)
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=20", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode == 0, security.stdout[-3000:] + security.stderr
    for setting in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "CapabilityBoundingSet=",
    ):
        assert setting in unit


def build_entry_point() -> str:
    found = shutil.which("remote-storage", path=str(Path(sys.executable).parent))
    assert found, "the remote-storage console script is not installed in this environment"
    return found


def test_systemd_review_would_notice_a_weak_unit(tmp_path: Path) -> None:
    """The exposure check is not vacuous: a unit without hardening fails it."""
    analyze = ensure_debian_package("systemd", "systemd-analyze")
    weak = tmp_path / "weak.service"
    weak.write_text(f"[Service]\nExecStart={build_entry_point()} serve\n")
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=20", str(weak)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert security.returncode != 0


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def test_dockerfile_is_multi_stage_unprivileged_and_health_checked() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a build stage with the compiler and a slim runtime stage"
    build, final = stages[0], stages[-1]
    assert any("gcc" in rest for op, rest in build if op == "RUN"), "the build stage installs a C compiler"
    assert any("IMPLEMENTATION == 'c'" in rest for op, rest in build if op == "RUN"), "and checks the C build"
    for op, rest in build:
        if op == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime stage runs unprivileged"
    assert not any(op == "RUN" and "gcc" in rest for op, rest in final), "no compiler in the runtime image"
    [health] = [rest for op, rest in final if op == "HEALTHCHECK"]
    assert "/-/healthy" in health
    [entrypoint] = [json.loads(rest) for op, rest in final if op == "ENTRYPOINT"]
    [cmd] = [json.loads(rest) for op, rest in final if op == "CMD"]
    assert entrypoint == ["remote-storage", "serve"]
    check_serve_flags(cmd)
    assert any(op == "COPY" and "--from=" in rest for op, rest in final)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_references_what_exists(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"remote-storage", "prometheus", "grafana"}
    adapter = services["remote-storage"]
    build = adapter["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    check_serve_flags(adapter["command"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"
            else:
                assert source in compose["volumes"], f"{name} uses an undeclared volume {source}"
    assert services["prometheus"]["depends_on"]["remote-storage"]["condition"] == "service_healthy"
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    assert prometheus["remote_write"][0]["url"] == "http://remote-storage:9201/api/v1/write"
    assert prometheus["remote_write"][0]["queue_config"]["retry_on_http_429"] is True
    assert prometheus["remote_read"][0]["url"] == "http://remote-storage:9201/api/v1/read"


def test_grafana_provisioning_points_at_the_compose_services(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/remote-storage.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/" + DASHBOARD.name


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert expressions
    return expressions


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # Grafana's variables as Prometheus would see them after substitution
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:expr_{i}",
                        "expr": e.replace("$__rate_interval", "1m").replace("$job", ".+"),
                    }
                    for i, e in enumerate(dashboard_expressions())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_metrics_the_service_serves() -> None:
    async def scrape() -> str:
        app = create_app(MemoryStorage())
        async with TestClient(TestServer(app)) as client:
            response = await client.post(
                "/api/v1/write", data=v1_body([series([1], [1.0], __name__="up")]), headers=V1_HEADERS
            )
            assert response.status == 204
            text: str = await (await client.get("/metrics")).text()
            return text

    served = set(re.findall(r"^# TYPE (\S+) (\S+)", asyncio.run(scrape()), re.MULTILINE))
    names = set()
    for name, kind in served:
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
    used = {
        name
        for expr in dashboard_expressions()
        for name in re.findall(r"\b((?:remote_storage|process)_[a-z_]+)\b", expr)
    }
    assert used - names == set(), "the dashboard names metrics the service does not serve"

"""HTTPS: the server's TLS context, its refusals at start, client certificates, worker processes."""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from remote_storage.auth import hash_password
from remote_storage.config import ConfigError, Settings
from remote_storage.tls import describe_tls, server_ssl_context
from tests.support.adapter import Adapter, start_adapter
from tests.support.certs import CertificateAuthority, KeyPair
from tests.support.net import http_get, poll_until
from tests.support.procs import Processes
from tests.support.wire import V1_HEADERS, series, v1_body


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "test")


@pytest.fixture
def server_pair(ca: CertificateAuthority) -> KeyPair:
    return ca.issue("server", ip="127.0.0.1")


def tls_settings(pair: KeyPair, client_ca: Path | None = None) -> Settings:
    return Settings(
        tls_cert_file=str(pair.cert_file),
        tls_key_file=str(pair.key_file),
        tls_client_ca_file=str(client_ca or ""),
    )


def test_context_has_modern_defaults(ca: CertificateAuthority, server_pair: KeyPair) -> None:
    assert server_ssl_context(Settings()) is None
    assert describe_tls(Settings()) == "TLS off"
    context = server_ssl_context(tls_settings(server_pair))
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    assert describe_tls(tls_settings(server_pair)) == "TLS on, client certificates off"
    mutual = server_ssl_context(tls_settings(server_pair, ca.cert_file))
    assert mutual is not None
    assert mutual.verify_mode == ssl.CERT_REQUIRED
    assert describe_tls(tls_settings(server_pair, ca.cert_file)) == "TLS on, client certificates required"


def test_settings_refuse_half_a_configuration(server_pair: KeyPair) -> None:
    with pytest.raises(ConfigError, match=r"^--tls-key-file: HTTPS needs both"):
        Settings(tls_cert_file=str(server_pair.cert_file))
    with pytest.raises(ConfigError, match=r"^--tls-cert-file: HTTPS needs both"):
        Settings(tls_key_file=str(server_pair.key_file))
    with pytest.raises(ConfigError, match=r"^--tls-client-ca-file: client certificates need HTTPS"):
        Settings(tls_client_ca_file=str(server_pair.cert_file))


def test_unusable_files_are_refused_naming_the_flag(
    tmp_path: Path, ca: CertificateAuthority, server_pair: KeyPair
) -> None:
    other = ca.issue("other", ip="127.0.0.1")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a PEM file\n")
    encrypted = tmp_path / "encrypted-key.pem"
    key = serialization.load_pem_private_key(server_pair.key_file.read_bytes(), password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    missing = tmp_path / "missing.pem"
    cert, key_file = server_pair.cert_file, server_pair.key_file
    cases: list[tuple[Path, Path, Path | None, str]] = [
        (missing, key_file, None, r"^--tls-cert-file: cannot read .*missing\.pem: No such file"),
        (key_file, key_file, None, r"^--tls-cert-file: .* holds no usable PEM certificate"),
        (cert, missing, None, r"^--tls-key-file: cannot read .*missing\.pem"),
        (cert, garbage, None, r"^--tls-key-file: .*garbage\.pem holds no usable PEM private key"),
        (cert, other.key_file, None, r"^--tls-key-file: .* is not the private key of the certificate in"),
        (cert, encrypted, None, r"^--tls-key-file: .*encrypted-key\.pem is encrypted"),
        (cert, key_file, missing, r"^--tls-client-ca-file: cannot read .*missing\.pem"),
        (cert, key_file, garbage, r"^--tls-client-ca-file: .*garbage\.pem holds no usable PEM certificate"),
    ]
    for cert_file, key_path, ca_file, message in cases:
        settings = Settings(
            tls_cert_file=str(cert_file), tls_key_file=str(key_path), tls_client_ca_file=str(ca_file or "")
        )
        with pytest.raises(ConfigError, match=message) as caught:
            server_ssl_context(settings)
        assert "\n" not in str(caught.value)


def test_serve_refuses_a_mismatched_key_at_start(ca: CertificateAuthority, server_pair: KeyPair) -> None:
    other = ca.issue("other", ip="127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORAGE_")}
    argv = ["serve", "--listen", "127.0.0.1:0", "--storage", "memory://"]
    argv += ["--tls-cert-file", str(server_pair.cert_file), "--tls-key-file", str(other.key_file)]
    result = subprocess.run(
        [sys.executable, "-m", "remote_storage", *argv], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert "--tls-key-file: " in result.stderr
    assert "is not the private key of the certificate" in result.stderr


PASSWORD = "tls and basic"
BODY = v1_body([series([1000], [1.0], __name__="up", job="tls")])


def secure_args(tmp_path: Path, ca: CertificateAuthority, server_pair: KeyPair) -> tuple[str, ...]:
    config = tmp_path / "auth.toml"
    config.write_text(f'[users.prometheus]\npassword_hash = "{hash_password(PASSWORD.encode(), 4)}"\n')
    return (
        "--auth-config",
        str(config),
        "--tls-cert-file",
        str(server_pair.cert_file),
        "--tls-key-file",
        str(server_pair.key_file),
        "--tls-client-ca-file",
        str(ca.cert_file),
    )


def post_write(url: str, context: ssl.SSLContext, *, authorized: bool = True) -> int:
    headers = dict(V1_HEADERS)
    if authorized:
        headers["Authorization"] = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(f"{url}/api/v1/write", data=BODY, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code


def test_https_with_client_certificates_and_basic_auth(
    adapter: Callable[..., Adapter], tmp_path: Path, ca: CertificateAuthority, server_pair: KeyPair
) -> None:
    client = ca.client_context(ca.issue("prometheus", client=True))
    started = adapter("memory://", extra_args=secure_args(tmp_path, ca, server_pair), ssl_context=client)
    assert started.url.startswith("https://")
    log = started.process.log_text()
    assert f"listening on https://127.0.0.1:{started.port}" in log
    assert "auth: basic (1 user), /metrics protected; TLS on, client certificates required" in log

    assert post_write(started.url, client) == 204
    assert post_write(started.url, client, authorized=False) == 401
    # No client certificate, or one from another CA: the handshake is refused, before any HTTP.
    rogue = CertificateAuthority(tmp_path, "rogue")
    for context in (ca.client_context(), ca.client_context(rogue.issue("prometheus", client=True))):
        with pytest.raises(OSError):
            post_write(started.url, context)
    # Plain HTTP on the HTTPS port gets no HTTP answer.
    with pytest.raises(OSError):
        http_get(f"http://{started.address}/-/healthy", timeout=10)
    assert http_get(f"{started.url}/-/healthy", timeout=10, context=client) == (200, b"Healthy\n")


def test_workers_serve_https_with_the_same_settings(
    processes: Processes, tmp_path: Path, ca: CertificateAuthority, server_pair: KeyPair
) -> None:
    client = ca.client_context(ca.issue("prometheus", client=True))
    args = ("--workers", "2", *secure_args(tmp_path, ca, server_pair))
    started = start_adapter(processes, f"sqlite:///{tmp_path}/d.db", extra_args=args, ssl_context=client)
    started.wait_ready(30)
    poll_until(
        lambda: True if started.process.log_text().count("listening on https://") == 2 else None,
        30,
        "both workers listening on HTTPS",
    )
    assert started.process.log_text().count("TLS on, client certificates required") == 2
    for _ in range(10):  # connections spread over the workers; every one checks the credentials
        assert post_write(started.url, client) == 204
        assert post_write(started.url, client, authorized=False) == 401
    os.kill(started.process.pid, signal.SIGTERM)
    assert started.process.wait(timeout=30) == 0, started.process.describe()

"""Programs from Debian packages that integration tests need.

CI starts on fresh machines, so a test that needs, say, Prometheus installs
the Debian package on first use when it runs as root, and otherwise fails
with the command to run. ``apt-get update`` runs at most once per session.

Installing runs the package's maintainer scripts as usual: on a host with a
running init system that may start the packaged service (Debian's
``prometheus`` listens on :9090). Containers with a ``policy-rc.d`` that
denies starts, as CI's, start nothing. Tests never use the packaged service
or its port; they start their own servers on free loopback ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

__all__ = ["ensure_debian_package"]

APT_UPDATE_TIMEOUT = 300.0
APT_INSTALL_TIMEOUT = 900.0
# Wait for a dpkg lock held by another apt (a parallel test worker, an
# unattended upgrade) instead of failing at once.
APT_LOCK_TIMEOUT = 300
OUTPUT_TAIL_CHARS = 4000
# Where Debian puts binaries; a non-root PATH often lacks the sbin ones.
SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

_apt_update: subprocess.CompletedProcess[str] | None = None


def find_binary(binary: str) -> str | None:
    """Absolute path of ``binary`` (a name or a path), or None if not installed."""
    if os.sep in binary:
        return binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None
    search = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_BIN_DIRS])
    return shutil.which(binary, path=search)


def ensure_debian_package(package: str, binary: str) -> str:
    """Path of ``binary``; installs the Debian ``package`` first if it is missing.

    Installing needs root and apt-get; without them the calling test fails
    with the command to run. Example::

        prometheus = ensure_debian_package("prometheus", "/usr/bin/prometheus")
    """
    found = find_binary(binary)
    if found is not None:
        return found
    how = f"install it with `sudo apt-get install --no-install-recommends {package}`"
    if shutil.which("apt-get") is None:
        pytest.fail(f"{binary} not found and this machine has no apt-get: {how}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail(f"{binary} not found and tests do not run as root: {how}", pytrace=False)

    update = _apt_get_update_once()
    install = _apt_get(["install", "-y", "--no-install-recommends", package], APT_INSTALL_TIMEOUT)
    found = find_binary(binary)
    if install.returncode != 0 or found is None:
        details = [_summarize(install)]
        if update.returncode != 0:
            details.insert(0, _summarize(update))
        outcome = (
            f"exited with {install.returncode}"
            if install.returncode != 0
            else f"succeeded but {binary} is still missing"
        )
        pytest.fail(
            f"`apt-get install {package}` {outcome}; {how}\n\n" + "\n\n".join(details),
            pytrace=False,
        )
    return found


def _apt_get_update_once() -> subprocess.CompletedProcess[str]:
    # A failed update is not fatal: a stale third-party source fails it while
    # Debian's own lists arrived; the install's outcome decides.
    global _apt_update
    if _apt_update is None or _apt_update.returncode != 0:
        _apt_update = _apt_get(["update"], APT_UPDATE_TIMEOUT)
    return _apt_update


def _apt_get(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    argv = [
        "apt-get",
        "-q",
        "-o",
        f"DPkg::Lock::Timeout={APT_LOCK_TIMEOUT}",
        # Never stop to ask about configuration files.
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        *args,
    ]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "l"}
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode()
        pytest.fail(
            f"`{' '.join(argv)}` did not finish within {timeout:.0f}s:\n{output[-OUTPUT_TAIL_CHARS:]}",
            pytrace=False,
        )


def _summarize(result: subprocess.CompletedProcess[str]) -> str:
    command = " ".join(str(arg) for arg in result.args)
    return f"$ {command}  (exit {result.returncode})\n{(result.stdout or '')[-OUTPUT_TAIL_CHARS:]}"

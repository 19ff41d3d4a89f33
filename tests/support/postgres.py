"""A private PostgreSQL server for integration tests.

Debian's ``postgresql`` package is installed on first use (see
``system.py``); its binaries live in ``/usr/lib/postgresql/<version>/bin``.
The package's own cluster is never used (in containers its service does not
even start). Instead ``start_postgres`` runs ``initdb`` in a fresh directory
and starts ``postgres`` in the foreground:

* listening on 127.0.0.1 only, on a free port, unix sockets in its own
  directory;
* durable as in production (``fsync``, ``synchronous_commit`` and
  ``full_page_writes`` on), so crash tests see real commit semantics;
* password (SCRAM) authentication for the superuser ``postgres`` with a
  random password, so other local users cannot reach it and backends see a
  URL with credentials.

PostgreSQL refuses to run as root: as root the server runs as the ``postgres``
system user (the package creates it) through ``setpriv`` from util-linux, in
a directory under the system temp dir that user can reach::

    with start_postgres(log_dir) as server:
        with server.database() as url:  # postgresql://postgres:...@127.0.0.1:PORT/test_1
            ...
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

import pytest

from .net import free_port, poll_until
from .procs import ManagedProcess, ProcessDied, child_pids
from .system import ensure_debian_package

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresServer", "postgres_bin_dir", "start_postgres"]

SUPERUSER = "postgres"
PACKAGE_ROOT = Path("/usr/lib/postgresql")
INITDB_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5
START_ATTEMPTS = 3
OUTPUT_TAIL_CHARS = 4000
# Settings the server runs with; anything not named keeps PostgreSQL's default.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "max_connections": "200",
    "logging_collector": "off",
    "log_destination": "stderr",
}


def _installed_bin_dir() -> Path | None:
    """``/usr/lib/postgresql/<version>/bin`` of the newest installed server, if any."""
    found = [path.parent for path in PACKAGE_ROOT.glob("*/bin/postgres") if os.access(path, os.X_OK)]
    if not found:
        return None
    return max(found, key=lambda bin_dir: [int(part) for part in re.findall(r"\d+", bin_dir.parent.name)])


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres``; installs the server package if missing."""
    found = _installed_bin_dir()
    if found is None:
        # Every Debian server package (postgresql-<version>) depends on
        # postgresql-common, which ships pg_ctlcluster: its absence means no
        # server is installed, and installing "postgresql" brings the
        # distribution's current version.
        ensure_debian_package("postgresql", "pg_ctlcluster")
        found = _installed_bin_dir()
    if found is None:
        pytest.fail(
            f"no PostgreSQL server under {PACKAGE_ROOT}/<version>/bin although postgresql-common is "
            "installed: install one with `sudo apt-get install --no-install-recommends postgresql`",
            pytrace=False,
        )
    return found


def _psycopg() -> ModuleType:
    # Imported on use, so that conftest (which imports this module) loads
    # without the SQL test dependencies.
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        pytest.fail("psycopg is not installed: pip install 'psycopg[binary]'", pytrace=False)


class PostgresServer:
    """A running private server; ``url()`` and ``database()`` give what tests connect to."""

    def __init__(self, process: ManagedProcess, port: int, password: str, home: Path) -> None:
        self.process = process
        self.port = port
        self.password = password
        self.home = home
        self.host = "127.0.0.1"
        self.user = SUPERUSER
        self._database_numbers = itertools.count(1)
        self._name = process.name
        self._starts = 0
        self._frozen: list[int] = []

    def url(self, database: str = "postgres") -> str:
        """``postgresql://postgres:PASSWORD@127.0.0.1:PORT/<database>``."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", *, autocommit: bool = False) -> psycopg.Connection:
        """A psycopg connection to ``database``; close it (use ``with``)."""
        connection: psycopg.Connection = _psycopg().connect(
            self.url(database), autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT
        )
        return connection

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """Create a fresh database ``test_<n>``, yield its URL, drop it (and its sessions) after."""
        from psycopg import sql

        name = f"test_{next(self._database_numbers)}"
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.url(name)
        finally:
            with self.connect(autocommit=True) as conn:
                # FORCE ends sessions a killed client left behind.
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll until a connection answers ``SELECT 1``; fail at once if the server exits."""
        operational_error = _psycopg().OperationalError

        def check() -> bool:
            self.process.check_alive()
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
            except operational_error as exc:
                raise AssertionError(str(exc).strip()) from None
            return True

        poll_until(check, timeout, f"PostgreSQL on {self.host}:{self.port}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint), then the usual TERM/KILL fallback."""
        self.thaw()
        with contextlib.suppress(ProcessLookupError):
            if self.process.returncode is None:
                os.kill(self.process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT)
        self.process.stop()

    def start_again(self, ready_timeout: float = READY_TIMEOUT) -> None:
        """Start the server again after :meth:`stop`: same data directory, same port, same password.

        For outage tests: clients that knew the server find it where it was.
        Its log goes to a new file beside the first one (``<name>-again-<n>.log``).
        """
        if self.process.returncode is None:
            raise RuntimeError("start_again: the server is still running; stop() it first")
        self._starts += 1
        process = ManagedProcess(
            f"{self._name}-again-{self._starts}",
            self.process.argv,
            self.process.log_path.parent,
            env=_server_env(_server_account()),
            cwd=self.home,
        ).start()
        self.process = process
        try:
            self.wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def freeze(self) -> list[int]:
        """Stop (SIGSTOP) the server and every process it forked: connections stay open, nothing
        answers, as with a hung server or a dead network. Returns the pids; :meth:`thaw` continues them.

        PostgreSQL puts each child in a session of its own, so the process group
        of the server is not enough: the children are found by parent pid.
        """
        os.kill(self.process.pid, signal.SIGSTOP)  # first: it forks no child meanwhile
        children = child_pids(self.process.pid)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        self._frozen = [self.process.pid, *children]
        return list(self._frozen)

    def thaw(self) -> None:
        """Continue what :meth:`freeze` stopped (no-op when nothing is frozen)."""
        for pid in reversed(self._frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def describe(self) -> str:
        return self.process.describe()

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: ``postgres`` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        pytest.fail(
            f"tests run as root and there is no {SUPERUSER!r} user to run PostgreSQL as; "
            "the postgresql-common package creates it (reinstall it)",
            pytrace=False,
        )


def _reachable_temp_root() -> Path:
    """A temp directory every user can traverse (the server's user must reach its home)."""
    for candidate in (Path(tempfile.gettempdir()), Path("/tmp")):
        resolved = candidate.resolve()
        if all(p.stat().st_mode & stat.S_IXOTH for p in (resolved, *resolved.parents)):
            return resolved
    pytest.fail("no temp directory reachable by the postgres user (check TMPDIR)", pytrace=False)


def _as_account(argv: list[str], account: pwd.struct_passwd | None) -> list[str]:
    if account is None:
        return argv
    # setpriv (util-linux, always installed on Debian) execs the program, so
    # its pid is the server's: signals go straight to the postmaster.
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--", *argv]


def _server_env(account: pwd.struct_passwd | None) -> dict[str, str]:
    # Nothing from the caller's environment (PGDATA, PGPORT, locale) leaks in.
    home = account.pw_dir if account is not None else os.environ.get("HOME", "/")
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": home}


def _initdb(bin_dir: Path, home: Path, password: str, account: pwd.struct_passwd | None) -> Path:
    pwfile = home / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if account is not None:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    data = home / "data"
    argv = [
        str(bin_dir / "initdb"),
        f"--pgdata={data}",
        f"--username={SUPERUSER}",
        f"--pwfile={pwfile}",
        "--auth-host=scram-sha-256",
        "--auth-local=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        # The cluster is thrown away with the test session; the server itself
        # runs with fsync on.
        "--no-sync",
        "--no-instructions",
    ]
    try:
        result = subprocess.run(
            _as_account(argv, account),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_server_env(account),
            cwd=home,
            timeout=INITDB_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"initdb did not finish within {INITDB_TIMEOUT:.0f}s", pytrace=False)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        pytest.fail(
            f"initdb exited with {result.returncode}:\n{result.stdout[-OUTPUT_TAIL_CHARS:]}", pytrace=False
        )
    return data


def _make_home(account: pwd.struct_passwd | None) -> Path:
    home = Path(tempfile.mkdtemp(prefix="remote-storage-pg-", dir=_reachable_temp_root()))
    if account is not None:
        os.chown(home, account.pw_uid, account.pw_gid)
    return home


def start_postgres(log_dir: Path, *, ready_timeout: float = READY_TIMEOUT) -> PostgresServer:
    """Initialise and start a private server; returns once it accepts connections.

    The server's log goes to ``log_dir/postgres*.log``. Use the result as a
    context manager: leaving it stops the server and removes its directory.
    """
    bin_dir = postgres_bin_dir()
    account = _server_account()
    password = secrets.token_hex(16)
    home = _make_home(account)
    try:
        data = _initdb(bin_dir, home, password, account)
        attempt = 0
        while True:
            attempt += 1
            port = free_port()
            argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(home)]
            for name, value in SERVER_SETTINGS.items():
                argv += ["-c", f"{name}={value}"]
            process = ManagedProcess(
                f"postgres-{attempt}", _as_account(argv, account), log_dir, env=_server_env(account), cwd=home
            ).start()
            server = PostgresServer(process, port, password, home)
            try:
                server.wait_ready(ready_timeout)
                return server
            except ProcessDied:
                server.process.stop()
                # Another process took the free port between the check and the bind.
                if attempt == START_ATTEMPTS or "could not bind" not in process.log_text():
                    raise
            except BaseException:
                server.stop()
                raise
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise

"""Processes started by tests: logged to a file, always stopped.

A ``ManagedProcess`` runs in its own process group, so stopping it also stops
any workers it forked. Stopping sends SIGTERM, waits a bounded time, then
SIGKILL. Use it as a context manager, or collect several in a
``Processes`` (what the fixtures in ``conftest.py`` do).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["ManagedProcess", "ProcessDied", "Processes", "child_pids", "is_running"]

STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0
LOG_TAIL_CHARS = 6000


class ProcessDied(RuntimeError):
    """A process a test relies on exited; the message carries its log.

    Not an ``AssertionError``, so that bounded polls, which treat those as
    "not yet", stop at once.
    """


class ManagedProcess:
    """A subprocess whose stdout and stderr go to ``<log_dir>/<name>.log``.

    >>> with ManagedProcess("sleeper", ["sleep", "60"], tmp_path) as proc:  # doctest: +SKIP
    ...     proc.check_alive()
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.log_path = log_dir / f"{name}.log"
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self._require().pid

    @property
    def returncode(self) -> int | None:
        return self._require().poll()

    def log_text(self, tail: int = LOG_TAIL_CHARS) -> str:
        """The last ``tail`` characters the process printed."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data[-tail:].decode("utf-8", "replace")

    def describe(self) -> str:
        """Command, state and log tail, for failure messages."""
        state = "not started"
        if self._popen is not None:
            code = self._popen.poll()
            state = "running" if code is None else f"exited with {code}"
        return (
            f"{self.name} ({state}): {' '.join(self.argv)}\n"
            f"--- last lines of {self.log_path} ---\n{self.log_text()}"
        )

    def check_alive(self) -> None:
        """Raise ``ProcessDied`` with the log if the process has exited."""
        if self._require().poll() is not None:
            raise ProcessDied(self.describe())

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the process to exit; its exit code.

        Raises ``subprocess.TimeoutExpired`` if it is still running then.
        """
        return self._require().wait(timeout=timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it.

        Returns the exit code (None if it was never started). Safe to call twice.
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                popen.wait(timeout=KILL_TIMEOUT)
        # Workers left behind by a leader that exited on its own.
        self._signal_group(signal.SIGKILL)
        return popen.returncode

    def _signal_group(self, signum: int) -> None:
        # The group id is the leader's pid (start_new_session); it stays
        # reserved while any member lives, so this cannot hit a stranger.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _require(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._popen

    def __enter__(self) -> ManagedProcess:
        if self._popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Processes:
    """The processes one test started, stopped together in reverse order.

    Fixture use::

        @pytest.fixture
        def processes(tmp_path):
            group = Processes(tmp_path / "logs")
            try:
                yield group
            finally:
                group.stop_all()
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        if any(proc.name == name for proc in self.processes):
            raise ValueError(f"a process named {name!r} was already started in this test")
        proc = ManagedProcess(name, argv, self.log_dir, env=env, cwd=cwd)
        # Registered before starting so that a failed start is still cleaned up.
        self.processes.append(proc)
        return proc.start()

    def stop_all(self) -> None:
        errors: list[BaseException] = []
        for proc in reversed(self.processes):
            try:
                proc.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def describe(self) -> str:
        return "\n\n".join(proc.describe() for proc in self.processes)


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from the state on (state, ppid, ...), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
    return text[text.rindex(")") + 2 :].split()


def child_pids(parent: int) -> list[int]:
    """Pids of the live processes whose parent is ``parent`` (read from ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None and int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    """True while process ``pid`` exists and has not exited (a zombie has exited)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"

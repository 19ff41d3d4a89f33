"""Child processes that stop when the process that started them dies."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["PARENT_CHECK_INTERVAL", "exit_with_parent"]

log = logging.getLogger("remote_storage")

#: How often a worker checks that its parent is alive (where the kernel cannot tell it).
PARENT_CHECK_INTERVAL = 1.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def exit_with_parent(parent: int) -> None:
    """Make this process get SIGTERM (a graceful stop, in ``serve``) when process ``parent`` dies.

    On Linux the kernel sends it (``prctl(PR_SET_PDEATHSIG)``) the moment the
    parent exits, however it dies. Everywhere, a daemon thread also checks
    every :data:`PARENT_CHECK_INTERVAL` whether the parent changed (an
    orphan is adopted by another process) and sends the signal itself; it
    also covers a parent that died before this function ran.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError):
            log.warning("prctl is not available; a thread watches the parent process instead")

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL)
        log.warning("the parent process %d is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

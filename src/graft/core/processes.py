"""Child processes that die with their parent: a killed gate or supervisor never leaves a server listening."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for Popen: the kernel sends the child SIGTERM when its parent dies, kill -9 included (Linux).

    Elsewhere it does nothing; the parent's own cleanup (terminate in a `finally`) still runs on a normal exit.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

"""`graft serve --supervise`: a small process manager that restarts the server process when it dies.

The supervisor first binds the port itself: a port in use or out of range is one line and exit 1, never a restart
loop (and never a readiness answer taken from another server). It then runs the server (`graft serve` without
`--supervise`) as a child process that dies with it. A child that dies after it became ready — killed by the OOM
killer or `kill -9`, a crash in a native library — is restarted after half a second, and with a growing pause (up
to `MAX_PAUSE` seconds) if it keeps dying young; each restart is logged. A child killed by a signal is restarted
even before it was seen ready. A child that exits by itself before it ever becomes ready (a bad package) is a
configuration error: the supervisor exits with its exit code instead of restarting it forever — unless a last-good
version is kept for the served alias, which the child starts from, so the supervisor never gives up then. SIGTERM
and SIGINT are passed to the child, and the supervisor exits when it has stopped.
On Kubernetes the kubelet is the outer supervisor (a pod's restart
policy and liveness probe); this one keeps a pod from restarting for a crash of its server process alone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from graft.core.processes import die_with_parent
from graft.serve.client import Client
from graft.serve.server import bind

MAX_PAUSE = 10.0  # seconds between restarts of a child that keeps dying young
YOUNG = 30.0  # a child that dies within this many seconds of becoming ready doubles the pause


def _log(message: str) -> None:
    print(f"graft serve (supervisor): {message}", file=sys.stderr, flush=True)


def _became_ready(child: subprocess.Popen, host: str, port: int) -> bool:
    """Wait until the child answers readiness (True) or exits first (False)."""
    probe = Client("127.0.0.1" if host in ("0.0.0.0", "::") else host, port, timeout=2)
    try:
        while child.poll() is None:
            if probe.ready():
                return True
            time.sleep(0.2)
        return False
    finally:
        probe.close()


def _kept(last_good: Path | None) -> bool:
    return last_good is not None and (last_good / "graft_last_good.json").is_file()


def supervise(argv: list[str], host: str, port: int, last_good: Path | None = None) -> int:
    """Run `graft serve argv` (the server itself) and keep it running; return the exit code to leave with.

    `last_good`: the folder of the served alias' last-good copy; while it holds one, startup failures are retried.
    """
    bind(host, port).close()  # a port in use is a configuration error: one line, before any child starts
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts, pause = 0, 0.5
    while True:
        child = subprocess.Popen([sys.executable, "-m", "graft.cli", "serve", *argv], preexec_fn=die_with_parent)
        _log(f"server process {child.pid} started" + (f" (restart {restarts})" if restarts else ""))
        ready = _became_ready(child, host, port)
        ready_at = time.monotonic()
        code = child.wait()
        if stopping:
            return 0
        if not ready and code >= 0 and not _kept(last_good):  # a startup error with nothing to fall back on
            _log(f"server process {child.pid} exited with code {code} before it was ready: not restarting it")
            return code or 1
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        pause = min(MAX_PAUSE, pause * 2) if not ready or time.monotonic() - ready_at < YOUNG else 0.5
        restarts += 1
        _log(f"server process {child.pid} {how}; restarting it in {pause:.1f} s")
        time.sleep(pause)

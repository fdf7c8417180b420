"""What the fault tests inject faults into: a real `mlflow server`, a registry that never answers, params, processes."""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

from graft.serve.client import free_port
from tests.shrink import write_params


class MlflowServer:
    """`mlflow server` on a loopback port, in its own process group so that stopping it stops all its workers."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        """Start it and wait for its health endpoint (60 s at most)."""
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "a")  # noqa: SIM115 (the process writes it while it runs)
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
             f"sqlite:///{self.root / 'mlflow.db'}", "--artifacts-destination", str(self.root / "artifacts"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.root / "server.log").read_text()[-2000:]
            try:
                if requests.get(f"{self.uri}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError("mlflow server did not start: " + (self.root / "server.log").read_text()[-2000:])

    def stop(self) -> None:
        """Stop it (the outage): SIGKILL to its whole process group, then wait until the port refuses."""
        if self.proc is None:
            return
        with_suppressed(lambda: os.killpg(self.proc.pid, signal.SIGKILL))
        self.proc.wait(10)
        self.proc = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.2)
            except OSError:
                return


def with_suppressed(fn) -> None:
    try:
        fn()
    except ProcessLookupError:
        pass


class BlackHole:
    """A 'slow registry': a loopback port that accepts connections and never answers (bounded: closed at exit)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.uri = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def params_for(shrunk, tmp: Path, registry: dict | None = None, **sections) -> Path:
    """The shrunk params with a registry of their own under `tmp` (or `registry`), sections updated."""
    params = copy.deepcopy(shrunk[0])
    params["registry"] = {**params["registry"], "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}",
                          "artifact_location": str(tmp / "mlartifacts"), "model_name": "graft-faults",
                          "timeout_s": 2, "retries": 1, **(registry or {})}
    params["serve"] = {**params.get("serve", {}), "last_good_dir": str(tmp / "last-good")}
    for name, values in sections.items():
        params[name] = {**params.get(name, {}), **values}
    return write_params(tmp, params)


def graft(*argv: str, env: dict | None = None, timeout: float = 300, cwd: Path | None = None,
          preexec=None) -> subprocess.CompletedProcess:
    """`graft ARGV` as a user runs it: a new process, its exit code, stdout and stderr."""
    return subprocess.run([sys.executable, "-m", "graft.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd, preexec_fn=preexec)


def one_line_error(res: subprocess.CompletedProcess, command: str) -> str:
    """The error of a failed command: exit 1, no traceback, its message one line starting `graft COMMAND: error:`."""
    assert res.returncode == 1, (res.returncode, res.stdout[-2000:], res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith(f"graft {command}: error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    return errors[0]


def children_named(pid: int, word: str) -> list[psutil.Process]:
    """The descendants of `pid` whose command line holds `word`."""
    try:
        return [c for c in psutil.Process(pid).children(recursive=True) if word in " ".join(c.cmdline())]
    except psutil.NoSuchProcess:
        return []

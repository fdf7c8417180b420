"""Faults around serving: a broken version on the alias plus kill -9, a tampered download, a registry outage while
serving, ports taken or out of range, stalled and excess clients, a missing token, and the files a server leaves.

`graft serve` runs as a real process (supervised where the case is about restarts) on a loopback port, against a
real SQLite registry; requests are real HTTP. Each case asserts what must hold: no failed request once the restart
window is over, no 5xx, one-line errors, no restart loop, nothing left in the temporary folder.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import requests

from graft.core import config
from graft.promote import registry
from graft.serve.client import free_port
from tests.faults.harness import MlflowServer, graft, one_line_error, params_for

pytestmark = pytest.mark.faults
RESTART_WINDOW = 30.0  # seconds from kill -9 of the server process to answering again (documented in serving.md)


def infer_body(texts: list[str]) -> dict:
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}


class Served:
    """`graft serve` (optionally --supervise) on a free loopback port; waits until ready."""

    def __init__(self, model: str, params: Path, log: Path, supervise: bool = False, env: dict | None = None):
        self.port, self.log_path = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")  # noqa: SIM115 (the process writes it while it runs)
        self.proc = subprocess.Popen([sys.executable, "-m", "graft.cli", "serve", "--model", model, "--params",
                                      str(params), "--port", str(self.port), *(["--supervise"] if supervise else [])],
                                     stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.wait_ready(90)

    def ready(self) -> dict | None:
        try:
            r = requests.get(f"{self.url}/v2/health/ready", timeout=2)
            return r.json() if r.ok else None
        except requests.RequestException:
            return None

    def wait_ready(self, seconds: float) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            if (answer := self.ready()) is not None:
                return answer
            time.sleep(0.1)
        pytest.fail(f"graft serve did not become ready within {seconds} s: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text()

    def metrics(self) -> str:
        return requests.get(f"{self.url}/metrics", timeout=10).text

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {seconds} s: {what}")


def broken_copy(stage_run, tmp_path: Path) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(stage_run["onnx"], broken)
    (broken / "tokenizer.json").unlink()
    return broken


def set_alias_by_hand(reg, version: int) -> None:
    """What a person does in the MLflow UI or client: move the alias with no graft check at all."""
    client = mlflow.MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    client.set_registered_model_alias(reg.model_name, reg.alias, str(version))


def caches_of(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"graft-serve-{pid}-*"))


def test_a_broken_alias_and_a_killed_server_leave_the_last_good_version_answering(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, serve={"poll_seconds": 0.5})
    reg = config.load(params).registry
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)  # v1 serves well: kept as last-good
    registry.register(broken_copy(stage_run, tmp_path), reg, {}, {}, {}, alias="staging")  # v2 cannot load
    srv = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "serve.log", supervise=True)
    url = f"{srv.url}/v2/models/{reg.model_name}/infer"
    failures, answers, stop = [], [], threading.Event()

    def load() -> None:  # (sent, done, status): a response the killed server wrote just before SIGKILL and read
        while not stop.is_set():  # after it must not count as "answering again": that is judged by send time
            sent = time.monotonic()
            try:
                r = requests.post(url, json=infer_body(["a tweet about the economy"]), timeout=10)
                (answers if r.status_code == 200 else failures).append((sent, time.monotonic(), r.status_code))
            except requests.RequestException as exc:
                failures.append((sent, time.monotonic(), type(exc).__name__))
            time.sleep(0.02)

    client = threading.Thread(target=load)
    try:
        client.start()
        set_alias_by_hand(reg, 2)  # a broken version on the alias: the running server refuses it
        wait_for(lambda: 'graft_model_swaps_total{result="refused"} 1.0' in srv.metrics(), 30, "v2 refused")
        (child,) = psutil.Process(srv.proc.pid).children()
        killed = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)  # the restart must not take serving down
        wait_for(lambda: any(sent > killed for sent, _, _ in answers), RESTART_WINDOW, "answering again after kill -9")
        back = min(done for sent, done, _ in answers if sent > killed)
        time.sleep(2)
        health = srv.ready()
        assert health is not None, srv.output()
        metrics = srv.metrics()
    finally:
        stop.set()
        client.join()
        srv.stop()
    assert not [f for f in failures if f[0] > back], failures  # nothing sent once it answered again failed
    assert not [f for f in failures if f[1] < killed], failures  # nor anything before the kill
    assert all(code != 500 for _, _, code in failures)
    assert "serving the last-good version 1" in health["degraded"] and "version 2" in health["degraded"]
    assert "graft_degraded 1.0" in metrics and 'graft_model_version{version="1"} 1.0' in metrics
    assert "DEGRADED" in srv.output() and "restarting it" in srv.output()
    assert back - killed < RESTART_WINDOW


def test_a_degraded_server_recovers_when_the_alias_moves_to_a_good_version(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, serve={"poll_seconds": 0.5})
    reg = config.load(params).registry
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)
    first = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "first.log")
    first.stop()  # v1 served: it is the last-good copy now
    assert not caches_of(first.proc.pid)  # its downloads went with it
    registry.register(broken_copy(stage_run, tmp_path), reg, {}, {}, {}, expected=1)  # v2 on the alias, broken
    srv = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "serve.log")
    try:
        assert "last-good version 1" in srv.ready()["degraded"]
        registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=2)  # v3: good
        wait_for(lambda: "degraded" not in (srv.ready() or {"degraded": 1}), 30, "recovered on v3")
        r = requests.post(f"{srv.url}/v2/models/{reg.model_name}/infer", json=infer_body(["x"]), timeout=10)
        assert r.json()["model_version"] == "3" and "graft_degraded 0.0" in srv.metrics()
        (cache,) = caches_of(srv.proc.pid)
        assert [p.name for p in cache.iterdir()] == ["v3"]  # refused and swapped-out downloads are deleted
    finally:
        srv.stop()
    assert not caches_of(srv.proc.pid)


def test_a_tampered_version_is_refused_by_its_digest_while_serving(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, serve={"poll_seconds": 0.5})
    reg = config.load(params).registry
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)
    v2 = registry.register(stage_run["onnx"], reg, {}, {}, {}, alias="staging")
    (model,) = [p for p in (tmp_path / "mlartifacts").rglob("model.onnx") if v2["run_id"] in p.parts]
    with open(model, "r+b") as fh:  # one flipped byte in a weight: the file still loads, the digest does not match
        fh.seek(-100, 2)
        byte = fh.read(1)
        fh.seek(-100, 2)
        fh.write(bytes([byte[0] ^ 1]))
    srv = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "serve.log")
    try:
        set_alias_by_hand(reg, 2)
        wait_for(lambda: 'graft_model_swaps_total{result="refused"} 1.0' in srv.metrics(), 30, "v2 refused")
        assert requests.get(f"{srv.url}/v2/models/{reg.model_name}", timeout=10).json()["versions"] == ["1"]
    finally:
        srv.stop()
    assert "digest differs from the one registered with it" in srv.output()


def test_a_registry_outage_while_serving_keeps_serving_and_a_restart_starts_from_last_good(stage_run, shrunk,
                                                                                          tmp_path):
    server = MlflowServer(tmp_path / "registry").start()
    params = params_for(shrunk, tmp_path, registry={"tracking_uri": server.uri}, serve={"poll_seconds": 0.5})
    reg = config.load(params).registry
    try:
        registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)
        srv = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "serve.log")
    finally:
        server.stop()  # the outage, while the server follows the alias
    try:
        wait_for(lambda: "graft_registry_poll_errors_total 0.0" not in srv.metrics(), 30, "a failed poll counted")
        r = requests.post(f"{srv.url}/v2/models/{reg.model_name}/infer", json=infer_body(["x"]), timeout=10)
        assert r.status_code == 200 and r.json()["model_version"] == "1"
    finally:
        srv.stop()
    started = time.monotonic()
    again = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "again.log")  # restarted in the outage
    try:
        assert "serving the last-good version 1" in again.ready()["degraded"] and server.uri in again.output()
        r = requests.post(f"{again.url}/v2/models/{reg.model_name}/infer", json=infer_body(["x"]), timeout=10)
        assert r.status_code == 200 and time.monotonic() - started < 60
    finally:
        again.stop()


def test_ports_in_use_or_out_of_range_are_one_line_and_never_a_restart_loop(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    try:
        for extra in ([], ["--supervise"]):
            started = time.monotonic()
            res = graft("serve", "--params", str(params), "--model", str(stage_run["onnx"]), "--port", port, *extra,
                        timeout=60)
            line = one_line_error(res, "serve")
            assert f"127.0.0.1:{port} is in use by another process" in line and "restarting" not in res.stderr
            assert time.monotonic() - started < 30
    finally:
        taken.close()
    for bad in ("99999", "0", "-1"):
        res = graft("serve", "--params", str(params), "--model", str(stage_run["onnx"]), "--port", bad, timeout=60)
        assert f"--port {bad} is out of range" in one_line_error(res, "serve")


def _stalled(port: int) -> socket.socket:
    """A client that sends headers promising 100 bytes of body, 10 of them, and then nothing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"POST /v2/models/graft/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"inputs\":")
    return s


def _response(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out


def test_stalled_bodies_get_408_and_open_connections_are_bounded(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, serve={"read_timeout_s": 1.5, "max_connections": 6})
    srv = Served(str(stage_run["onnx"]), params, tmp_path / "serve.log")
    url = f"{srv.url}/v2/models/graft/infer"
    try:
        stalled = [_stalled(srv.port) for _ in range(6)]
        time.sleep(0.3)
        over = requests.post(url, json=infer_body(["x"]), timeout=10)
        assert over.status_code == 503  # the bound: answered at once, not queued behind the stalled ones
        answers = [_response(s) for s in stalled]
        for s in stalled:
            s.close()
        heads = [a[:40] for a in answers]
        assert all(a.startswith(b"HTTP/1.1 408") and b"serve.read_timeout_s" in a for a in answers), heads
        wait_for(lambda: requests.post(url, json=infer_body(["x", "y"]), timeout=10).status_code == 200, 10,
                 "answering once the stalled connections are closed")
        assert srv.proc.poll() is None
        assert 'graft_requests_total{endpoint="infer",status="408"} 6.0' in srv.metrics()
    finally:
        srv.stop()


def test_a_token_protects_infer_and_metadata_but_not_health(stage_run, shrunk, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    params = params_for(shrunk, tmp_path, serve={"auth_token_file": str(token)})
    srv = Served(str(stage_run["onnx"]), params, tmp_path / "serve.log")
    url = f"{srv.url}/v2/models/graft"
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            for r in (requests.post(f"{url}/infer", json=infer_body(["x"]), headers=headers, timeout=10),
                      requests.get(url, headers=headers, timeout=10)):
                assert r.status_code == 401 and "bearer token" in r.json()["error"]
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
        good = {"Authorization": "Bearer s3cret-token"}
        assert requests.post(f"{url}/infer", json=infer_body(["x"]), headers=good, timeout=10).status_code == 200
        assert requests.get(url, headers=good, timeout=10).json()["name"] == "graft-faults"  # the registry name
        assert requests.get(f"{srv.url}/v2/health/ready", timeout=10).status_code == 200
        assert requests.get(f"{srv.url}/v2/health/live", timeout=10).status_code == 200
    finally:
        srv.stop()
    env_token = Served(str(stage_run["onnx"]), params_for(shrunk, tmp_path), tmp_path / "env.log",
                       env={"GRAFT_SERVE_TOKEN": "from-env"})
    try:
        r = requests.get(f"{env_token.url}/v2/models/graft", headers={"Authorization": "Bearer from-env"}, timeout=10)
        assert r.status_code == 200
        assert requests.get(f"{env_token.url}/v2/models/graft", timeout=10).status_code == 401
    finally:
        env_token.stop()


def test_listening_beyond_loopback_without_a_token_warns(stage_run, shrunk, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "graft.cli", "serve", "--model", str(stage_run["onnx"]),
                             "--params", str(params_for(shrunk, tmp_path)), "--host", "0.0.0.0", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert line.startswith("graft serve: warning: listening on 0.0.0.0 without a token"), line


def test_a_dead_servers_downloads_are_reaped_by_the_next_server(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path)
    reg = config.load(params).registry
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)
    first = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "first.log")
    (cache,) = caches_of(first.proc.pid)
    os.kill(first.proc.pid, signal.SIGKILL)  # no chance to clean up
    first.proc.wait(10)
    (meta,) = (cache / "v1").rglob("graft_model.json")
    assert json.loads(meta.read_text())["labels"]
    second = Served(f"models:/{reg.model_name}@champion", params, tmp_path / "second.log")
    try:
        assert not cache.exists()
    finally:
        second.stop()

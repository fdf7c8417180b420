"""`graft serve` as a real process on a loopback port, called by tritonclient (a V2 client graft did not write)."""

import copy
import json
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from graft.core.config import RegistryConfig
from graft.data.tables import read_splits
from graft.promote import registry
from graft.serve.client import free_port
from tests.shrink import write_params


class Running:
    """A `graft serve` subprocess, ready (its V2 readiness endpoint answered) or a failed test with its output."""

    def __init__(self, model: str, params: Path, tmp: Path, without_torch: bool = False, supervise: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.path = tmp / f"serve-{self.port}.log"
        self.log = open(self.path, "w")  # noqa: SIM115
        argv = ["serve", "--model", model, "--params", str(params), "--port", str(self.port),
                *(["--supervise"] if supervise else [])]
        code = ("import sys; sys.modules['torch'] = None\n" if without_torch else "") + (
            f"from graft.cli import main; sys.exit(main({argv!r}))")
        self.proc = subprocess.Popen([sys.executable, "-c", "import sys\n" + code],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if requests.get(f"{self.url}/v2/health/ready", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        pytest.fail(f"graft serve did not become ready: {self.output()}")

    def output(self) -> str:
        return self.path.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


def params_for(shrunk, tmp: Path, **serve) -> Path:
    params = copy.deepcopy(shrunk[0])
    params["serve"] = {**params.get("serve", {}), **serve}
    params["registry"] = {"tracking_uri": f"sqlite:///{tmp}/mlflow.db", "artifact_location": str(tmp / "art"),
                          "experiment": "serve", "model_name": "graft-serve", "alias": "champion"}
    return write_params(tmp, params)


@pytest.fixture(scope="module")
def texts(stage_run):
    return read_splits(stage_run["splits"])["test"]["text"].astype(str).tolist()


@pytest.fixture(scope="module")
def served(stage_run, shrunk, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    srv = Running(str(stage_run["onnx"]), params_for(shrunk, tmp), tmp)
    yield srv
    srv.stop()


def _predict(package: Path, texts: list[str], tmp: Path) -> list[dict]:
    """What `graft predict` (the CLI, another process) answers for `texts`."""
    src = tmp / "inputs.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "graft.cli", "predict", "--model", str(package), "--input",
                          str(src)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json"])
def test_tritonclient_calls_succeed_and_agree_with_graft_predict(served, stage_run, texts, tmp_path, binary):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{served.port}")
    # a package folder is served under the registry's model name (registry.model_name); `graft` still answers
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("graft-serve")
    assert client.is_model_ready("graft") and not client.is_model_ready("graft-text")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("graft-serve")
    assert meta["name"] == "graft-serve" and client.get_model_metadata("graft")["name"] == "graft-serve"
    labels = meta["parameters"]["labels"]
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {
        "logits": [-1, len(labels)], "probabilities": [-1, len(labels)], "label": [-1]}
    assert meta["parameters"]["backbone"] and len(meta["parameters"]["data_md5"]) == 32
    assert client.get_model_metadata("graft", "1")["versions"] == ["1"]

    batch = texts[:24]
    inp = triton.InferInput("text", [len(batch)], "BYTES")
    inp.set_data_from_numpy(np.array([t.encode() for t in batch], dtype=np.object_), binary_data=binary)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "label")]
    result = client.infer("graft-serve", [inp], outputs=outputs, request_id="r1")
    assert result.get_response()["id"] == "r1" and result.get_response()["model_version"] == "1"
    assert result.get_response()["model_name"] == "graft-serve"
    probs, got = result.as_numpy("probabilities"), [b.decode() if isinstance(b, bytes) else b
                                                   for b in result.as_numpy("label")]
    expected = _predict(stage_run["onnx"], batch, tmp_path)
    assert got == [e["label"] for e in expected]
    want = np.array([[e["probabilities"][lab] for lab in labels] for e in expected])
    assert probs.shape == want.shape and np.abs(probs - want).max() < 2e-6  # predict rounds to 6 decimals
    client.close()


def _json_infer(texts: list) -> dict:
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}


def _binary_body(elements: list[bytes]) -> tuple[bytes, dict]:
    raw = b"".join(struct.pack("<I", len(e)) + e for e in elements)
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(elements)],
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head))}


MALFORMED = {
    "wrong datatype": (400, {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]}),
    "shape mismatch": (400, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a", "b"]}]}),
    "shape of rank 3": (400, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1, 1], "data": ["a"]}]}),
    "missing input": (400, {"inputs": []}),
    "unknown input name": (400, {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}),
    "numbers as BYTES": (400, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [7]}]}),
    "unknown output": (400, {**_json_infer(["a"]), "outputs": [{"name": "embedding"}]}),
    "bad JSON": (400, b'{"inputs": [ '),
    "not an object": (400, b"[1, 2]"),
    "non-UTF-8 bytes": (400, _binary_body([b"ok", b"\xff\xfe bad"])),
    "binary data cut short": (400, (_binary_body([b"hello"])[0][:-2], _binary_body([b"hello"])[1])),
    "too many inputs": (413, _json_infer(["x"] * 300)),
    "a text over the limit": (413, _json_infer(["x" * 9000])),
    "oversized body": (413, b"{" + b" " * (9 * 1024 * 1024) + b"}"),
    "request parameters as a list": (400, {**_json_infer(["a"]), "parameters": ["binary_data_output"]}),
    "request parameters as a string": (400, {**_json_infer(["a"]), "parameters": "binary"}),
    "input parameters as a list": (400, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                                     "data": ["a"], "parameters": [1]}]}),
    "output parameters as a string": (400, {**_json_infer(["a"]), "outputs": [{"name": "label", "parameters": "x"}]}),
    "data nested 900 deep": (400, b'{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": '
                             + b"[" * 900 + b'"a"' + b"]" * 900 + b"}]}"),
    "data nested 3 deep": (400, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [[["a"]]]}]}),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_request_gets_a_4xx_error_and_the_server_keeps_answering(served, texts, case):
    status, body = MALFORMED[case]
    headers = {}
    if isinstance(body, tuple):
        body, headers = body
    elif isinstance(body, dict):
        body = json.dumps(body).encode()
    r = requests.post(f"{served.url}/v2/models/graft/infer", data=body, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]
    ok = requests.post(f"{served.url}/v2/models/graft/infer", json=_json_infer(texts[:2]), timeout=30)
    assert ok.status_code == 200 and len(ok.json()["outputs"][2]["data"]) == 2
    assert served.proc.poll() is None


def test_unknown_models_and_versions_are_404s_with_an_error(served):
    for path in ("/v2/models/other", "/v2/models/graft/versions/7", "/v2/models/other/ready", "/v2/nowhere"):
        r = requests.get(served.url + path, timeout=10)
        assert r.status_code == 404 and "error" in r.json(), path
    r = requests.post(f"{served.url}/v2/models/other/infer", json=_json_infer(["a"]), timeout=10)
    assert r.status_code == 404 and "other" in r.json()["error"]


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")
               or line.startswith(name + "{"))


def test_concurrent_requests_are_batched_and_answered_alike(served, texts):
    before = requests.get(f"{served.url}/metrics", timeout=10).text
    alone = requests.post(f"{served.url}/v2/models/graft/infer", json=_json_infer(texts[:32]), timeout=30).json()
    alone = np.array(alone["outputs"][0]["data"]).reshape(32, -1)
    got: dict[int, np.ndarray] = {}
    errors: list[str] = []

    def call(i: int) -> None:
        r = requests.post(f"{served.url}/v2/models/graft/infer", json=_json_infer([texts[i]]), timeout=30)
        if r.status_code != 200:
            errors.append(r.text)
        else:
            got[i] = np.array(r.json()["outputs"][0]["data"])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(32) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 32
    for i, row in got.items():  # padding to a batch's longest text changes logits only in float rounding
        assert np.abs(row - alone[i]).max() < 1e-4
    after = requests.get(f"{served.url}/metrics", timeout=10).text
    calls = _metric(after, "graft_batch_size_count") - _metric(before, "graft_batch_size_count")
    inputs = _metric(after, "graft_batch_size_sum") - _metric(before, "graft_batch_size_sum")
    assert inputs == 32 + 96 and calls < 96, (calls, inputs)  # 96 one-text requests took fewer ONNX calls
    assert 'graft_requests_total{endpoint="infer",status="200"}' in after
    assert 'graft_model_version{version="1"} 1.0' in after


def test_an_alias_move_under_load_loses_no_request_and_a_broken_version_is_refused(stage_run, shrunk, texts,
                                                                                   tmp_path):
    params = params_for(shrunk, tmp_path, poll_seconds=0.5)
    reg = RegistryConfig(**_params_registry(params))
    registry.register(stage_run["onnx"], reg, {}, {}, {})
    srv = Running("models:/graft-serve@champion", params, tmp_path)
    stop, failures, versions = threading.Event(), [], []

    def load() -> None:
        while not stop.is_set():
            r = requests.post(f"{srv.url}/v2/models/graft-serve/infer", json=_json_infer(texts[:4]), timeout=30)
            if r.status_code != 200:
                failures.append(r.text)
            else:
                versions.append(r.json()["model_version"])

    clients = [threading.Thread(target=load) for _ in range(4)]
    try:
        for c in clients:
            c.start()
        broken = tmp_path / "broken"
        shutil.copytree(stage_run["onnx"], broken)
        (broken / "tokenizer.json").unlink()
        registry.register(broken, reg, {}, {}, {})  # version 2: cannot load
        _wait(lambda: "graft_model_swaps_total{result=\"refused\"}" in _metrics(srv), 15)
        assert requests.get(f"{srv.url}/v2/models/graft-serve", timeout=10).json()["versions"] == ["1"]
        registry.register(stage_run["onnx"], reg, {}, {}, {})  # version 3: good
        moved = time.monotonic()
        _wait(lambda: requests.get(f"{srv.url}/v2/models/graft-serve", timeout=10).json()["versions"] == ["3"], 15)
        assert time.monotonic() - moved < 0.5 + 5  # one poll interval, plus loading and probing the package
        time.sleep(1)
    finally:
        stop.set()
        for c in clients:
            c.join()
        srv.stop()
    assert not failures and set(versions) == {"1", "3"} and versions[-1] == "3", (failures[:3], set(versions))
    assert "refused the new version" in srv.output() and "tokenizer.json" in srv.output()


def _params_registry(params: Path) -> dict:
    import yaml

    return yaml.safe_load(params.read_text())["registry"]


def _metrics(srv: Running) -> str:
    return requests.get(f"{srv.url}/metrics", timeout=10).text


def _wait(condition, seconds: float, output=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {seconds} s" + (f"; the server wrote:\n{output()}" if output else ""))


def _gate(stage_run, params: Path, out: Path, package: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["graft", "gate", "--params", str(params), "--evaluate", str(stage_run["evaluate"]),
                           "--export", str(stage_run["export"]), "--package", str(package or stage_run["onnx"]),
                           "--splits", str(stage_run["splits"]), "--out", str(out)],
                          capture_output=True, text=True)


def test_the_gate_infra_validates_the_candidate_with_graft_serve_before_registering(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path)
    res = _gate(stage_run, params, tmp_path / "gate.json")
    assert res.returncode == 0, res.stderr
    verdict = json.loads((tmp_path / "gate.json").read_text())
    infra = verdict["infra_validation"]
    rows = shrunk[1].gate.infra_rows
    assert infra["passed"] and infra["rows"] == infra["answered"] == infra["agree"] == rows, infra
    assert infra["max_abs_diff"] <= shrunk[1].gate.max_onnx_logit_diff
    assert 0 < infra["latency_ms"]["p50"] <= infra["latency_ms"]["p95"] <= infra["latency_ms"]["max"]
    check = next(c for c in verdict["checks"] if c["name"] == "infra_validation")
    assert check["passed"] and f"answered {rows}/{rows} test rows" in check["why"]
    assert verdict["registered"]["version"] == 1


@pytest.mark.parametrize("damage", ["missing-tokenizer", "truncated-model"])
def test_a_package_broken_on_purpose_is_refused_by_infra_validation_and_nothing_registered(
        stage_run, shrunk, tmp_path, damage):
    broken = tmp_path / "broken"
    shutil.copytree(stage_run["onnx"], broken)
    if damage == "missing-tokenizer":
        (broken / "tokenizer.json").unlink()
    else:
        model = broken / "model.onnx"
        model.write_bytes(model.read_bytes()[:100_000])
    params = params_for(shrunk, tmp_path)
    res = _gate(stage_run, params, tmp_path / "gate.json", broken)
    assert res.returncode == 1, res.stderr
    reason = next(line for line in res.stderr.splitlines() if "infra_validation" in line)
    assert "graft serve exited with code 1 before it was ready" in reason
    assert ("missing tokenizer.json" if damage == "missing-tokenizer" else "ONNX Runtime cannot load it") in reason
    assert "nothing was registered" in res.stderr
    verdict = json.loads((tmp_path / "gate.json").read_text())
    assert verdict["registered"] is None and verdict["infra_validation"]["answered"] == 0
    assert registry.champion(RegistryConfig(**_params_registry(params))) is None


def test_infra_validation_holds_served_requests_to_the_latency_budget(stage_run, shrunk, tmp_path):
    from graft.core import config
    from graft.promote import infra

    cfg = config.load(params_for(shrunk, tmp_path))
    cfg = cfg.model_copy(update={"gate": cfg.gate.model_copy(update={"max_latency_ms_p95": 0.01, "infra_rows": 5})})
    result = infra.validate(stage_run["onnx"], stage_run["splits"], cfg)
    assert not result["passed"] and result["answered"] == result["agree"] == 5
    assert "over the latency budget 0.01 ms (gate.max_latency_ms_p95)" in result["why"]


def test_the_supervisor_restarts_a_server_killed_with_sigkill(stage_run, shrunk, texts, tmp_path):
    import os
    import signal

    import psutil

    srv = Running(str(stage_run["onnx"]), params_for(shrunk, tmp_path), tmp_path, supervise=True)
    try:
        (child,) = psutil.Process(srv.proc.pid).children()
        url = f"{srv.url}/v2/models/graft/infer"
        before = requests.post(url, json=_json_infer(texts[:3]), timeout=30).json()["outputs"]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)

        def back() -> bool:
            try:
                return requests.get(f"{srv.url}/v2/health/ready", timeout=1).ok
            except requests.ConnectionError:
                return False

        _wait(back, 60, srv.output)
        (again,) = psutil.Process(srv.proc.pid).children()
        assert again.pid != child.pid
        assert requests.post(url, json=_json_infer(texts[:3]), timeout=30).json()["outputs"] == before
    finally:
        srv.stop()
    assert srv.proc.returncode == 0 and not again.is_running()
    assert f"server process {child.pid} was killed by SIGKILL; restarting it" in srv.output()


def test_the_supervisor_does_not_restart_a_server_that_cannot_start(stage_run, shrunk, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(stage_run["onnx"], broken)
    (broken / "tokenizer.json").unlink()
    res = subprocess.run([sys.executable, "-m", "graft.cli", "serve", "--model", str(broken), "--params",
                          str(params_for(shrunk, tmp_path)), "--port", str(free_port()), "--supervise"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "missing tokenizer.json" in res.stderr and "before it was ready: not restarting it" in res.stderr

"""Infra-validation: the candidate package, started as `graft serve` on a loopback port, must answer real test rows.

Before the gate registers anything it does what TFX's InfraValidator does for a serving binary: it starts the
candidate exactly as it will be served (`graft serve --model PACKAGE`, a separate process, the configured `serve`
limits and batching), waits for the V2 readiness endpoint, checks the model metadata (name, labels), then sends a
seeded sample of test rows one request at a time over HTTP. Every row must be answered, each answer must carry the
label `graft predict` gives the same row and logits within `gate.max_onnx_logit_diff` of it, and the p95 of the
request latencies (as a client sees them: HTTP, protocol and inference) must meet `gate.max_latency_ms_p95`. A
package that does not start (a missing tokenizer, a corrupt model), answers with an error, disagrees or is too slow
fails the gate's `infra_validation` check, so it is never registered.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from graft.core.config import Config
from graft.core.errors import GraftError
from graft.core.processes import die_with_parent
from graft.data.tables import read_splits
from graft.serve.client import CallError, Client, free_port
from graft.serve.predict import Package
from graft.serve.server import DEFAULT_NAME

HOST = "127.0.0.1"


class NotServing(Exception):
    """The server did not come up; the message is the reason, in one line."""


def _last_line(log: Path) -> str:
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    return lines[-1] if lines else "no output"


@contextmanager
def serving(package: str | Path, cfg: Config, precision: str, timeout: float):
    """`graft serve` on the package at a free loopback port: yields (a client of it, seconds to ready)."""
    with tempfile.TemporaryDirectory(prefix="graft-infra-") as tmp:
        params, log = Path(tmp) / "params.yaml", Path(tmp) / "serve.log"
        params.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        for _attempt in range(3):  # a free port can be taken between picking it and binding it: pick another
            port = free_port(HOST)
            argv = [sys.executable, "-m", "graft.cli", "serve", "--model", str(package), "--params", str(params),
                    "--host", HOST, "--port", str(port), *(["--int8"] if precision == "int8" else [])]
            start = time.perf_counter()
            with open(log, "w") as out:
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)  # reaped even when the gate is killed
            client = Client(HOST, port, timeout=timeout)
            try:
                while not client.ready():
                    if proc.poll() is not None:
                        break
                    if time.perf_counter() - start > timeout:
                        raise NotServing(f"graft serve was not ready after {timeout:.0f} s (gate.infra_timeout_s): "
                                         f"{_last_line(log)}")
                    time.sleep(0.1)
                else:
                    yield client, time.perf_counter() - start
                    return
                if "address already in use" not in log.read_text(errors="replace").lower():
                    raise NotServing(f"graft serve exited with code {proc.returncode} before it was ready: "
                                     f"{_last_line(log)}")
            finally:
                client.close()
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        raise NotServing(f"graft serve found no free loopback port: {_last_line(log)}")


def validate(package: str | Path, split_dir: str | Path, cfg: Config) -> dict:
    """Start the candidate with `graft serve`, send it test rows, compare with `graft predict`; a result dict.

    `passed` and `why` (one sentence) say the outcome; the rest is what was measured: rows sent and answered,
    label agreements, the largest logit difference, request latency percentiles (ms), seconds to ready.
    """
    policy, started = cfg.gate, time.perf_counter()
    test = read_splits(split_dir)["test"]
    rng = np.random.default_rng(cfg.seed)
    rows = np.sort(rng.choice(len(test), size=min(policy.infra_rows, len(test)), replace=False))
    result = {"passed": False, "precision": policy.serve, "rows": len(rows), "answered": 0, "agree": 0,
              "max_abs_diff": None, "latency_ms": None, "ready_s": None}
    try:
        with serving(package, cfg, policy.serve, policy.infra_timeout_s) as (client, ready_s):
            result["ready_s"] = round(ready_s, 2)
            # what `graft predict` answers for each row, one at a time (batch 1, as the requests below are sent)
            pkg = Package(package, policy.serve)
            items = pkg.modality.examples(test.iloc[rows])
            expected = np.concatenate([pkg.logits([x]) for x in items])
            labels, wire, name = pkg.labels, pkg.modality.wire_name, cfg.serve.model_name or DEFAULT_NAME
            del pkg
            listed = client.get(f"/v2/models/{name}").get("parameters", {}).get("labels")
            if listed != labels:
                return {**result, "why": f"graft serve's model metadata lists labels {listed}, the package {labels}"}
            got, times, failure = [], [], None
            for i, item in enumerate(items):
                t0 = time.perf_counter()
                try:
                    answer = client.infer(name, wire, [item])
                except CallError as exc:
                    failure = failure or f"test row {int(rows[i])}: {exc}"
                    continue
                times.append(1000 * (time.perf_counter() - t0))
                got.append((i, answer))
    except (NotServing, CallError) as exc:
        return {**result, "why": str(exc)}
    except GraftError as exc:  # graft serve started, but `graft predict` cannot load the same package
        return {**result, "why": f"graft predict cannot load the package graft serve serves: {exc}"}
    result["answered"] = len(got)
    if failure:
        return {**result, "why": f"graft serve answered {len(got)} of {len(rows)} test rows ({failure})"}
    logits = np.concatenate([a["logits"] for _, a in got])
    result["agree"] = agree = sum(a["label"][0] == labels[int(expected[i].argmax())] for i, a in got)
    result["max_abs_diff"] = diff = float(np.abs(logits - expected).max())
    p50, p95, top = (float(np.percentile(times, q)) for q in (50, 95, 100))
    result["latency_ms"] = {"p50": round(p50, 3), "p95": round(p95, 3), "max": round(top, 3)}
    result["seconds"] = round(time.perf_counter() - started, 2)
    said = (f"graft serve ({policy.serve}, ready in {ready_s:.1f} s) answered {len(got)}/{len(rows)} test rows; "
            f"labels agree with graft predict on {agree}/{len(rows)}, largest |logit| difference {diff:.1e}; "
            f"request p95 {p95:.1f} ms")
    if agree < len(rows) or diff > policy.max_onnx_logit_diff:
        return {**result, "why": said + f" — the served model DISAGREES with graft predict (allowed |logit| "
                f"difference {policy.max_onnx_logit_diff:.0e})"}
    budget = policy.max_latency_ms_p95
    if budget is not None and p95 > budget:
        return {**result, "why": said + f", over the latency budget {budget} ms (gate.max_latency_ms_p95)"}
    return {**result, "passed": True, "why": said + (f", budget {budget} ms" if budget is not None else "")}

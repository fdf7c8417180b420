"""Faults around promotion: a registry that is down or slow, a champion that moved, outputs that cannot be written,
a gate killed mid-way, versions that do not load or were tampered with, and the human approval path.

Real processes (`graft ...` as a user runs it), a real registry (SQLite, or `mlflow server` on 127.0.0.1 stopped
for the outage): each case injects one fault and asserts what must hold — the champion unchanged or moved exactly
once, no passing verdict, no orphan process, a one-line error.
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import mlflow
import psutil
import pytest

from graft.core import config
from graft.core.artifacts import read_json
from graft.core.config import RegistryConfig
from graft.promote import registry
from tests.faults.harness import BlackHole, MlflowServer, children_named, graft, one_line_error, params_for

pytestmark = pytest.mark.faults


def gate_args(stage_run, params, out, package=None) -> list[str]:
    return ["gate", "--params", str(params), "--evaluate", str(stage_run["evaluate"]), "--export",
            str(stage_run["export"]), "--package", str(package or stage_run["onnx"]), "--splits",
            str(stage_run["splits"]), "--out", str(out)]


def reg_of(params) -> RegistryConfig:
    return config.load(params).registry


def versions(reg: RegistryConfig) -> list[int]:
    client = mlflow.MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    try:
        return sorted(int(v.version) for v in client.search_model_versions(f"name = '{reg.model_name}'"))
    except mlflow.exceptions.MlflowException:
        return []


def test_a_registry_outage_during_evaluate_is_an_error_never_a_first_run(stage_run, shrunk, tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    try:
        params = params_for(shrunk, tmp_path, registry={"tracking_uri": server.uri})
        registry.register(stage_run["onnx"], reg_of(params), {}, {}, {}, expected=None)  # v1: a champion exists
    finally:
        server.stop()  # the outage
    out = tmp_path / "evaluate.json"
    started = time.monotonic()
    res = graft("evaluate", "--params", str(params), "--splits", str(stage_run["splits"]), "--finetune",
                str(stage_run["finetune"]), "--scratch", str(stage_run["scratch"]), "--out", str(out),
                "--confusion", str(tmp_path / "confusion.json"))
    line = one_line_error(res, "evaluate")
    assert f"registry {server.uri}" in line and "tries" in line
    assert not out.exists()  # no evaluation that says "first run" for the gate to trust
    assert time.monotonic() - started < 120


def test_a_slow_registry_is_bounded_and_named(shrunk, tmp_path):
    hole = BlackHole()
    try:
        params = params_for(shrunk, tmp_path, registry={"tracking_uri": hole.uri, "timeout_s": 1, "retries": 1})
        started = time.monotonic()
        res = graft("history", "--params", str(params))
        took = time.monotonic() - started
        assert hole.uri in one_line_error(res, "history") and took < 30, took
        started = time.monotonic()  # graft serve on an alias, nothing kept to fall back on: one line, not a hang
        res = graft("serve", "--params", str(params), "--model", "models:/graft-faults@champion", "--port", "0")
        assert "out of range" in one_line_error(res, "serve")
        from graft.serve.client import free_port

        res = graft("serve", "--params", str(params), "--model", "models:/graft-faults@champion", "--port",
                    str(free_port()))
        line = one_line_error(res, "serve")
        assert hole.uri in line and "no last-good version is kept" in line and time.monotonic() - started < 40
    finally:
        hole.close()


def test_a_registry_stopped_mid_gate_never_leaves_a_passing_verdict(stage_run, shrunk, tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    params = params_for(shrunk, tmp_path, registry={"tracking_uri": server.uri})
    out = tmp_path / "gate.json"
    proc = subprocess.Popen([sys.executable, "-m", "graft.cli", *gate_args(stage_run, params, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not children_named(proc.pid, " serve ") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert children_named(proc.pid, " serve "), "infra-validation never started"
        server.stop()  # the registry goes down while the gate infra-validates
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        proc.kill()
        server.stop()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert server.uri in one_line_error(res, "gate")
    verdict = read_json(out)
    assert verdict["passed"] is False and verdict["registered"] is None and server.uri in verdict["promotion_error"]
    assert all(c["passed"] for c in verdict["checks"])  # the model was fine: the fault, not the model, stopped it
    server.start()  # back up: nothing was promoted
    params = params_for(shrunk, tmp_path, registry={"tracking_uri": server.uri})
    try:
        assert registry.champion(reg_of(params)) is None
    finally:
        server.stop()


def test_the_gate_refuses_when_the_champion_moved_since_evaluate(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, gate={"infra_validate": False})
    reg = reg_of(params)
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)  # v1 became champion after evaluate ran
    out = tmp_path / "gate.json"
    line = one_line_error(graft(*gate_args(stage_run, params, out)), "gate")
    assert "the champion moved from no champion to v1 since evaluate" in line and "rerun evaluate" in line
    assert versions(reg) == [1] and registry.champion(reg)["version"] == 1
    assert read_json(out)["passed"] is False


def test_an_unwritable_output_stops_the_gate_before_the_registry(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, gate={"infra_validate": False})
    blocker = tmp_path / "metrics"
    blocker.write_text("a file where a folder should be")
    line = one_line_error(graft(*gate_args(stage_run, params, blocker / "gate.json")), "gate")
    assert f"{blocker}: a file is where a folder is needed (EEXIST)" in line
    assert versions(reg_of(params)) == [] and registry.champion(reg_of(params)) is None


def _file_size_limit() -> None:
    """A write that fails part-way (as on a full disk): files may not grow past 512 bytes (EFBIG, not a signal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))


def test_a_write_that_fails_part_way_leaves_nothing_half_written(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path, gate={"infra_validate": False})
    out = tmp_path / "out"
    out.mkdir()
    res = graft(*gate_args(stage_run, params, out / "gate.json"), preexec=_file_size_limit)
    line = one_line_error(res, "gate")
    assert "(EFBIG)" in line and str(out) in line
    assert list(out.iterdir()) == []  # no gate.json, no temporary file beside it
    assert not (tmp_path / "mlflow.db").exists()  # the registry was never opened


def test_a_gate_killed_during_infra_validation_leaves_no_server(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "graft.cli", *gate_args(stage_run, params, tmp_path / "g.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (servers := children_named(proc.pid, " serve ")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers, "infra-validation never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    alive = psutil.wait_procs(servers, timeout=15)[1]
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], "graft serve orphaned"
    assert registry.champion(reg_of(params)) is None


def _register_versions(stage_run, reg: RegistryConfig, tmp_path, broken_third: bool) -> None:
    """v1 and v2 as the gate registers them; v3 put on the alias bypassing every check (a hand-made mistake)."""
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=None)
    registry.register(stage_run["onnx"], reg, {}, {}, {}, expected=1)
    if broken_third:
        broken = tmp_path / "broken"
        shutil.copytree(stage_run["onnx"], broken)
        (broken / "tokenizer.json").unlink()
        registry.register(broken, reg, {}, {}, {}, expected=2)


def test_promote_and_rollback_check_the_version_and_walk_the_audit_log(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path)
    reg = reg_of(params)
    _register_versions(stage_run, reg, tmp_path, broken_third=True)
    splits = ["--splits", str(stage_run["splits"])]
    line = one_line_error(graft("promote", "--params", str(params), "--version", "3", "--reason", "again", *splits),
                          "promote")
    assert "v3 failed its checks, the alias did not move" in line and "tokenizer.json" in line
    res = graft("promote", "--params", str(params), "--version", "2", "--reason", "v3 is broken", *splits)
    assert res.returncode == 0 and registry.champion(reg)["version"] == 2, res.stderr
    # rollback walks the log back: v3 (the champion before the manual restore) fails its checks, v1 passes
    res = graft("rollback", "--params", str(params), "--reason", "bad reviews", *splits)
    assert res.returncode == 0 and "back on v1 (v2 rolled back)" in res.stdout, res.stderr
    assert "skipped v3:" in res.stderr and registry.champion(reg)["version"] == 1
    log = graft("history", "--params", str(params)).stdout.splitlines()
    kinds = [(line.split()[2], line.split()[4], line.split()[6]) for line in log[1:]]
    assert kinds == [("gate", "none", "v1"), ("gate", "v1", "v2"), ("gate", "v2", "v3"), ("promote", "v3", "v2"),
                     ("rollback", "v2", "v1")], log


def test_a_tampered_package_is_refused_by_its_digest(stage_run, shrunk, tmp_path):
    params = params_for(shrunk, tmp_path)
    reg = reg_of(params)
    _register_versions(stage_run, reg, tmp_path, broken_third=False)
    client = mlflow.MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    run = client.get_model_version(reg.model_name, "1").run_id
    (labels,) = [p for p in (tmp_path / "mlartifacts").rglob("labels.json") if run in p.parts]
    labels.write_text(json.dumps(list(reversed(json.loads(labels.read_text())))))  # swapped labels, same names
    res = graft("rollback", "--params", str(params), "--splits", str(stage_run["splits"]))
    line = one_line_error(res, "rollback")
    assert "no earlier version passes its checks, the alias stays on v2" in line and "digest differs" in line
    assert registry.champion(reg)["version"] == 2


def test_approval_required_puts_the_candidate_on_the_challenger_and_a_person_decides(stage_run, shrunk, tmp_path):
    from graft import evaluate

    params = params_for(shrunk, tmp_path, gate={"approval": "required"})
    reg, splits = reg_of(params), ["--splits", str(stage_run["splits"])]
    res = graft(*gate_args(stage_run, params, tmp_path / "gate.json"))
    assert res.returncode == 0 and "v1 is now 'challenger'" in res.stdout and "graft approve --version 1" in res.stdout
    assert registry.champion(reg) is None  # nothing serves it yet
    res = graft("approve", "--params", str(params), "--version", "1", "--by", "alice", "--note", "read the errors",
                *splits)
    assert res.returncode == 0 and "approved by alice" in res.stdout, res.stderr
    assert registry.champion(reg)["version"] == 1 and registry.Registry(reg).champion("challenger") is None
    # the next run is evaluated against v1, passes, waits as v2; bob rejects it
    evaluation = tmp_path / "evaluate.json"
    evaluate.run(stage_run["splits"], stage_run["finetune"], stage_run["scratch"], config.load(params), evaluation)
    args = gate_args(stage_run, params, tmp_path / "gate2.json")
    res = graft(*[str(evaluation) if a == str(stage_run["evaluate"]) else a for a in args])
    assert res.returncode == 0 and "v2 is now 'challenger'" in res.stdout, res.stderr
    res = graft("reject", "--params", str(params), "--version", "2", "--by", "bob", "--note", "too slow")
    assert res.returncode == 0 and "rejected by bob; the champion stays v1" in res.stdout, res.stderr
    line = one_line_error(graft("approve", "--params", str(params), "--version", "2", "--by", "eve", "--note", "x",
                                *splits), "approve")
    assert "is not the 'challenger'" in line and registry.champion(reg)["version"] == 1
    log = graft("history", "--params", str(params)).stdout.splitlines()
    assert log[0].endswith("champion v1, challenger unset")
    assert [(line.split()[2], line.split()[3]) for line in log[1:]] == [
        ("gate", "challenger:"), ("approve", "champion:"), ("gate", "challenger:"), ("reject", "challenger:")], log
    assert "by alice: read the errors; checks: graft serve" in log[2] and "by bob: too slow" in log[4]
    client = mlflow.MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    card = client.download_artifacts(client.get_model_version(reg.model_name, "1").run_id, "model_card.md",
                                      str(tmp_path))
    assert "## Approval" in open(card).read() and "Approved by alice" in open(card).read()


def test_os_errors_at_the_cli_are_one_line(shrunk, tmp_path, raw_file):
    blocker = tmp_path / "prepared"
    blocker.write_text("not a folder")
    line = one_line_error(graft("prepare", "--params", str(params_for(shrunk, tmp_path)), "--raw", str(raw_file),
                                "--out", str(blocker / "splits")), "prepare")
    assert str(blocker) in line and ("(ENOTDIR)" in line or "(EEXIST)" in line)

"""The KFP pipeline through kfp.local (SubprocessRunner, this interpreter) on the shrunk config."""

import json
from pathlib import Path

import pytest
from graft_kfp.pipelines.__main__ import local_summary, run_local

from graft.core import config
from graft.promote import registry
from tests.shrink import shrunk_image_params, shrunk_params, with_target, write_params

pytestmark = pytest.mark.slow


def run_pipeline(params: dict, root: Path) -> Path:
    """What `make kfp-run` does, with the given params."""
    return run_local(str(write_params(root.parent, params)), root)


def outputs(run_dir: Path, task: str) -> dict:
    return json.loads((run_dir / task / "executor_output.json").read_text())


@pytest.fixture(scope="module")
def kfp_run(tmp_path_factory, raw_file, target_files):
    """The pipeline on the shrunk config with a target domain, adapting to it by self-training."""
    tmp = tmp_path_factory.mktemp("kfp")
    params = with_target(shrunk_params(tmp), target_files)
    params["data"]["raw"] = str(raw_file)
    return params, run_pipeline(params, tmp / "root")


def test_every_task_ran_and_the_gate_promoted(kfp_run):
    params, run_dir = kfp_run
    tasks = {p.name for p in run_dir.iterdir()}
    assert tasks == {"freshness", "prepare", "validate", "select", "train", "baseline", "adapt", "selfcheck",
                     "evaluate", "explain", "export", "gate", "report", "register"}
    assert outputs(run_dir, "gate")["parameterValues"]["Output"] is True
    version = outputs(run_dir, "register")["parameterValues"]["Output"]
    assert registry.champion(config.from_dict(params).registry)["version"] == version
    text = local_summary(run_dir, str(run_dir.parent.parent / "params.yaml"))
    assert "gate           : PASSED" in text and f"graft-text version {version} -> alias 'champion'" in text
    assert "selfcheck      : Kendall tau" in text or "selfcheck      : tau undefined" in text
    assert "training       : finetune, " in text and "classical      :" in text


def test_typed_artifacts_for_the_ui(kfp_run):
    _, run_dir = kfp_run
    confusion = outputs(run_dir, "evaluate")["artifacts"]["confusion"]["artifacts"][0]["metadata"]
    names = [s["displayName"] for s in confusion["confusionMatrix"]["annotationSpecs"]]
    assert names == ["HillaryClinton", "realDonaldTrump"]
    assert sum(sum(r["row"]) for r in confusion["confusionMatrix"]["rows"]) == 60
    assert "| rank | backbone |" in (run_dir / "select" / "ranking").read_text()
    assert (run_dir / "gate" / "table").read_text().startswith("**PASSED**")
    evaluation = json.loads((run_dir / "evaluate" / "evaluation").read_text())
    assert set(evaluation) >= {"finetune", "scratch", "selfcheck", "domains"}
    dom = evaluation["domains"]  # the adaptation path: both domains scored, one model chosen, the gate agrees
    assert dom["method"] == "self_training" and set(dom["target"]) >= {"adapted", "source_only"}
    verdict = json.loads((run_dir / "gate" / "verdict").read_text())
    assert verdict["chosen"] == dom["chosen"] and verdict["notes"] == [dom["why"]]
    assert (run_dir / "adapt" / "model" / "model.safetensors").is_file()
    audited = [c["name"] for c in evaluation["selfcheck"]["candidates"]]
    assert len(audited) == 2 and (run_dir / "selfcheck" / "models" / audited[1] / "model.safetensors").is_file()
    parity = json.loads((run_dir / "export" / "parity").read_text())
    assert parity["fp32"]["agreement"] >= 0.999 and "int8" in parity
    assert (run_dir / "export" / "package" / "model.onnx").is_file()
    docs = (run_dir / "validate" / "docs").read_text()
    assert "Data validation: PASSED" in docs and "<iframe srcdoc=" in docs


def test_each_ui_artifact_has_its_kfp_type_and_content(kfp_run):
    """What the KFP UI renders: scalars, confusion matrix + ROC, Markdown tables, HTML pages."""
    _, run_dir = kfp_run

    def artifact(task: str, name: str) -> dict:
        return outputs(run_dir, task)["artifacts"][name]["artifacts"][0]

    scalars = artifact("evaluate", "evaluation")["metadata"]
    assert {"finetune_accuracy", "scratch_macro_f1", "classical_accuracy", "finetune_roc_auc"} <= set(scalars)
    roc = artifact("evaluate", "confusion")["metadata"]["confidenceMetrics"]
    assert len(roc) >= 3 and {"falsePositiveRate", "recall", "confidenceThreshold"} <= set(roc[0])
    assert artifact("gate", "verdict")["metadata"]["passed"] == 1.0
    page = (run_dir / "report" / "page").read_text()
    assert page.startswith("<!doctype html>") and "Gate checks" in page and "Backbone ranking" in page
    assert "<b>PASSED (not registered)</b>" in page  # the report task runs before `register`, beside it
    assert "| check | value | 95% CI |" in (run_dir / "gate" / "table").read_text()


def test_a_second_run_on_the_same_data_stops_at_freshness(kfp_run):
    params, first = kfp_run
    run_dir = run_pipeline(params, first.parent)  # same data, params and code as the champion it registered
    assert {p.name for p in run_dir.iterdir()} == {"freshness"}
    decision = json.loads((run_dir / "freshness" / "decision").read_text())
    assert decision["retrain"] is False and decision["reason"].startswith("no new data: champion v")
    assert outputs(run_dir, "freshness")["parameterValues"]["Output"] == ""
    prepared = outputs(first, "prepare")["artifacts"]["splits"]["artifacts"][0]["metadata"]
    assert prepared["data_md5"] == decision["data_md5"]  # the first run's cache key carried the content hash


def test_failing_gate_skips_registration(tmp_path, raw_file):
    params = shrunk_params(tmp_path)
    params["data"]["raw"] = str(raw_file)
    params["gate"].update(min_macro_f1=1.0, min_transfer_margin=0.99)
    run_dir = run_pipeline(params, tmp_path / "root")
    assert outputs(run_dir, "gate")["parameterValues"]["Output"] is False
    assert not (run_dir / "register").exists()
    assert registry.champion(config.from_dict(params).registry) is None
    text = local_summary(run_dir, str(tmp_path / "params.yaml"))
    assert "gate           : FAILED" in text and "model          : not registered" in text
    verdict = json.loads((run_dir / "gate" / "verdict").read_text())
    assert verdict["recorded_run"]  # the refusal is an MLflow run: the runs index shows it
    assert "<b>REFUSED</b>" in (run_dir / "report" / "page").read_text()


def test_with_approval_required_the_pipeline_ends_at_the_challenger(tmp_path, raw_file):
    """gate.approval: required in kfp.local: register puts the candidate on `challenger`; a person approves it."""
    import subprocess

    params = shrunk_params(tmp_path)
    params["data"]["raw"] = str(raw_file)
    params["gate"]["approval"] = "required"
    run_dir = run_pipeline(params, tmp_path / "root")
    version = outputs(run_dir, "register")["parameterValues"]["Output"]
    reg = config.from_dict(params).registry
    assert registry.champion(reg) is None and registry.Registry(reg).champion("challenger")["version"] == version
    text = local_summary(run_dir, str(tmp_path / "params.yaml"))
    assert f"version {version} -> alias 'challenger'" in text and "awaiting approval" in text
    splits = run_dir / "prepare" / "splits"
    res = subprocess.run(["graft", "approve", "--params", str(tmp_path / "params.yaml"), "--version", str(version),
                          "--by", "alice", "--note", "reviewed", "--splits", str(splits)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert registry.champion(reg)["version"] == version
    log = subprocess.run(["graft", "history", "--params", str(tmp_path / "params.yaml")], capture_output=True,
                         text=True, cwd=tmp_path).stdout.splitlines()
    assert [line.split()[2:4] for line in log[1:]] == [["gate", "challenger:"], ["approve", "champion:"]], log


def test_the_same_pipeline_runs_images_when_the_config_says_so(tmp_path_factory, image_raw):
    tmp = tmp_path_factory.mktemp("kfp-image")
    params = shrunk_image_params(tmp)
    params["data"]["raw"] = str(image_raw)
    run_dir = run_pipeline(params, tmp / "root")
    assert outputs(run_dir, "gate")["parameterValues"]["Output"] is True
    version = outputs(run_dir, "register")["parameterValues"]["Output"]
    assert registry.champion(config.from_dict(params).registry)["version"] == version
    confusion = outputs(run_dir, "evaluate")["artifacts"]["confusion"]["artifacts"][0]["metadata"]
    assert [s["displayName"] for s in confusion["confusionMatrix"]["annotationSpecs"]] == params["data"]["labels"]
    evaluation = json.loads((run_dir / "evaluate" / "evaluation").read_text())
    assert evaluation["classical"]["method"].startswith("small CNN") and evaluation["finetune"]["rows"] == 50
    meta = json.loads((run_dir / "export" / "package" / "graft_model.json").read_text())
    assert meta["modality"] == "image" and meta["image_size"] == 32

"""`dvc repro` of the real dvc.yaml in a temporary copy of the project, on the shrunk config.

The regression refusal and the image workspace run in test_dvc_regression.py and test_dvc_image.py, each on its own
copy, so that pytest's workers run them beside this file.
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from graft.core import config
from graft.core.artifacts import read_json
from graft.promote import registry
from tests.pipeline.dvc_project import new_project, sh
from tests.shrink import ROOT, shrunk_image_params, shrunk_params, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git + DVC copy of the project with the shrunk params and the pinned raw data, after a first `dvc repro`."""
    tmp = new_project(tmp_path_factory.mktemp("project"))
    return tmp, sh("dvc", "repro", cwd=tmp)


def test_repro_runs_every_stage_then_nothing(project):
    tmp, first = project
    for stage in ("prepare", "validate", "select", "train", "baseline", "selfcheck", "evaluate", "export", "gate"):
        assert f"Running stage '{stage}'" in first.stdout
    second = sh("dvc", "repro", cwd=tmp)
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout


def test_metrics_show_lists_finetune_and_scratch(project):
    tmp, _ = project
    out = sh("dvc", "metrics", "show", cwd=tmp).stdout
    for key in ("finetune.accuracy", "finetune.macro_f1", "scratch.accuracy", "scratch.macro_f1",
                "selfcheck.kendall_tau"):
        assert key in out
    gate = read_json(tmp / "metrics" / "gate.json")
    assert gate["passed"] is True and gate["registered"]["version"] >= 1


def test_data_efficiency_curve_from_the_matrix_stages(project):
    tmp, first = project
    for init in ("pretrained", "scratch"):
        for size in (20, 60):
            assert f"Running stage 'curve@{size}-{init}'" in first.stdout
            point = read_json(tmp / "metrics" / "curve" / f"{init}-{size}.json")
            assert point["examples"] == size and point["test_rows"] == 60  # the main run's test split
    rows = read_json(tmp / "plots" / "curve.json")
    assert [r["examples"] for r in rows] == [20, 60]
    assert all({"pretrained", "scratch", "gain"} <= set(r) for r in rows)
    shown = sh("dvc", "plots", "show", "--json", cwd=tmp).stdout
    assert "data_efficiency" in shown and "learning_curves" in shown
    # the HTML page renders offline: Vega comes inlined in the template .dvc/config names, not from a CDN
    sh("dvc", "plots", "show", "-o", "dvc_plots", cwd=tmp)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        requested, errors = [], []
        page.on("request", lambda r: requested.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp / "dvc_plots" / "index.html").as_uri(), wait_until="load")
        page.wait_for_selector("canvas, .vega-embed svg", timeout=15000)
        drawn = page.locator(".vega-embed").count()
        browser.close()
    assert requested == [(tmp / "dvc_plots" / "index.html").as_uri()] and errors == []
    assert drawn >= 2  # learning curves and the data-efficiency curve, each drawn by vega-embed


def test_gate_registered_the_champion(project):
    tmp, _ = project
    champ = registry.champion(config.load(tmp / "params.yaml").registry)
    assert champ is not None and champ["version"] == 1


def test_validation_docs_and_first_profile(project):
    tmp, _ = project
    assert (tmp / "reports" / "validate" / "index.html").is_file()
    assert "Data validation: PASSED" in (tmp / "reports" / "validate" / "summary.html").read_text()
    checks = read_json(tmp / "metrics" / "validate.json")["checks"]
    assert [c["detail"] for c in checks if c["table"] == "version"] == [
        "first validated version: no reference to compare with"]


def test_moving_the_cutoff_is_a_new_version_and_reruns_everything(project):
    tmp, _ = project
    params = yaml.safe_load((tmp / "params.yaml").read_text())
    assert params["data"]["cutoff"] == "2016-08-31"
    params["data"]["cutoff"] = "2016-09-30"
    write_params(tmp, params)
    out = sh("dvc", "repro", cwd=tmp).stdout
    for stage in ("prepare", "validate", "select", "train", "baseline", "selfcheck", "evaluate", "export", "gate"):
        assert f"Running stage '{stage}'" in out
    assert read_json(tmp / "data" / "prepared" / "manifest.json")["newest"] > "2016-09"
    drift_rows = {c["name"]: c for c in read_json(tmp / "metrics" / "validate.json")["checks"]
                  if c["table"] == "version"}
    assert set(drift_rows) == {"label_js", "length_psi", "oov_rate"}
    assert all(0 <= c["observed"] < c["threshold"]["fail"] for c in drift_rows.values())
    assert len(list((tmp / "data" / "profiles").glob("*.json"))) == 2
    gate = read_json(tmp / "metrics" / "gate.json")
    assert gate["registered"]["version"] == 2
    # the second run was compared with the first as champion, re-scored on the new test split
    assert read_json(tmp / "metrics" / "evaluate.json")["champion"]["version"] == 1
    assert [c["name"] for c in gate["checks"]][2] == "non_regression"
    assert "Running stage" not in sh("dvc", "repro", cwd=tmp).stdout  # an unchanged cut-off is a no-op


def test_push_and_pull_through_the_local_remote(project):
    tmp, _ = project
    sh("dvc", "push", "-q", cwd=tmp)
    assert any((tmp / ".dvcstore").rglob("*"))
    shutil.rmtree(tmp / "models")
    shutil.rmtree(tmp / ".dvc" / "cache")
    sh("dvc", "pull", "-q", cwd=tmp)
    assert (tmp / "models" / "onnx" / "model.onnx").is_file()
    assert "Data and pipelines are up to date" in sh("dvc", "status", cwd=tmp).stdout


@pytest.mark.parametrize("breakage, stage, expected", [
    ("unknown_label", "validate", ["label_in_set", "'BernieSanders'"]),
    # a file without the configured label column never gets as far as validation: prepare names it
    ("no_label_column", "prepare", ["no label column 'label' (set data.label_column); the file has: text"]),
])
def test_bad_data_stops_at_validate_and_registry_is_untouched(project, breakage, stage, expected):
    tmp, _ = project
    db = tmp / "mlflow.db"
    before = hashlib.md5(db.read_bytes()).hexdigest()
    bad = tmp / "incoming" / f"{breakage}.csv"
    bad.parent.mkdir(exist_ok=True)
    labels = ["HillaryClinton", "realDonaldTrump", "BernieSanders"]
    frame = pd.DataFrame({"text": [f"tweet {i}" for i in range(300)], "label": [labels[i % 3] for i in range(300)]})
    (frame.drop(columns="label") if breakage == "no_label_column" else frame).to_csv(bad, index=False)
    params = shrunk_params(tmp)
    params["data"].update(raw=f"incoming/{breakage}.csv", text_column="text", label_column="label")
    params["data"].pop("time_column")
    params["data"].pop("cutoff")
    write_params(tmp, params)
    res = sh("dvc", "repro", cwd=tmp, check=False)
    assert res.returncode != 0
    assert f"Running stage '{stage}'" in res.stdout and "Running stage 'select'" not in res.stdout
    failures = [line for line in res.stderr.splitlines() if line.startswith(f"graft {stage}:")]
    if stage == "validate":  # one line per failed expectation: the broken column fails in each of the three splits
        assert [f.split(": ")[2] for f in failures] == ["train", "validation", "test"]
    else:
        assert len(failures) == 1 and "Running stage 'validate'" not in res.stdout
    assert all(e in f for f in failures for e in expected)
    assert hashlib.md5(db.read_bytes()).hexdigest() == before
    gate = read_json(tmp / "metrics" / "gate.json")
    assert gate["registered"]["version"] == 2
    # the second run was compared with the first as champion, re-scored on the new test split
    assert read_json(tmp / "metrics" / "evaluate.json")["champion"]["version"] == 1
    assert [c["name"] for c in gate["checks"]][2] == "non_regression"  # the last good run's verdict


def test_changed_raw_data_is_detected_against_data_dvc(project):
    tmp, _ = project
    raw = Path(tmp / "data" / "raw" / "election-tweets-2016.tab")
    raw.write_text(raw.read_text() + "False\t2016-09-29 00:00:00\ten\t1\t1\t\t\trealDonaldTrump\t\tnew tweet\t\t\n")
    assert "modified" in sh("dvc", "status", "data.dvc", cwd=tmp).stdout


def dvc_without_venv(*args, cwd):
    """dvc started by path with the venv's bin/ off PATH, as from a plain shell: no error, nothing on stderr."""
    venv_bin = Path(sys.prefix, "bin").resolve()
    env = dict(os.environ, PATH=os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if Path(d).resolve() != venv_bin))
    res = sh(str(venv_bin / "dvc"), *args, cwd=cwd, env=env)
    assert "failed" not in res.stderr.lower() and "error" not in res.stderr.lower(), res.stderr
    return res.stdout


def commit(tmp):
    sh("git", "add", "-A", cwd=tmp)
    sh("git", "-c", "user.name=graft", "-c", "user.email=graft@localhost", "commit", "-q", "-m", "run", cwd=tmp)


def test_kfp_after_dvc_on_the_same_data_params_and_commit_is_no_new_data(project):
    """`make run` then `make kfp-run` on one commit: one lineage, so the KFP run stops at freshness."""
    tmp, _ = project
    params = shrunk_params(tmp)
    params["validate"]["profile_dir"] = "data/profiles"
    params["data"]["cutoff"] = "2016-09-30"
    params["registry"]["tracking_uri"] = f"sqlite:///{tmp / 'lineage.db'}"  # a first run: the gate promotes
    write_params(tmp, params)
    commit(tmp)
    dvc_without_venv("repro", "gate", cwd=tmp)
    reg = config.load(tmp / "params.yaml").registry
    assert registry.champion(reg)["version"] == 1
    sh(sys.executable, "-m", "graft_kfp.pipelines", "run", "--params", "params.yaml", "--root", ".kfp-local", cwd=tmp)
    (run_dir,) = (tmp / ".kfp-local").iterdir()
    assert {p.name for p in run_dir.iterdir()} == {"freshness"}
    decision = read_json(run_dir / "freshness" / "decision")
    assert decision["retrain"] is False and decision["reason"].startswith("no new data: champion v1 "), decision
    client = __import__("mlflow").MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    assert [int(v.version) for v in client.search_model_versions(f"name = '{reg.model_name}'")] == [1]


def test_dvc_experiments_and_diffs_against_the_last_commit(project):
    """`dvc exp run -S`, `dvc exp show` and `dvc metrics/params/plots diff HEAD`, with the image workspace committed
    beside the text one and dvc started by path, the venv not on PATH (bin/graft finds it)."""
    tmp, _ = project
    ws = tmp / "image"
    ws.mkdir(exist_ok=True)
    shutil.copy(ROOT / "image" / "dvc.yaml", ws / "dvc.yaml")
    if not (ws / "src").exists():
        (ws / "src").symlink_to(Path("..") / "src")
    write_params(ws, shrunk_image_params(ws))
    for committed in ("metrics", "plots"):  # the image workspace's recorded run, as the repository holds it
        shutil.copytree(ROOT / "image" / committed, ws / committed, dirs_exist_ok=True)
    dvc_without_venv("repro", "evaluate", cwd=tmp)
    commit(tmp)
    out = dvc_without_venv("exp", "run", "-S", "train.epochs=2", "evaluate", cwd=tmp)
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out

    shown = json.loads(dvc_without_venv("exp", "show", "--json", cwd=tmp))
    experiments = [e for commit in shown[1:] for x in commit.get("experiments") or [] for e in x.get("revs", [])]
    assert all(r.get("error") is None for r in shown + experiments), [r.get("error") for r in shown + experiments]
    assert len(experiments) == 1
    assert experiments[0]["data"]["params"]["params.yaml"]["data"]["train"]["epochs"] == 2
    assert "image/params.yaml" in shown[0]["data"]["params"]  # the image workspace's params are read too

    params_diff = json.loads(dvc_without_venv("params", "diff", "HEAD", "--json", cwd=tmp))
    assert params_diff["params.yaml"]["train.epochs"] == {"old": 1, "new": 2, "diff": 1}
    metrics_diff = json.loads(dvc_without_venv("metrics", "diff", "HEAD", "--all", "--json", cwd=tmp))
    f1 = metrics_diff["metrics/evaluate.json"]["finetune.macro_f1"]
    assert f1["old"] is not None and f1["new"] is not None  # the committed revision's metrics were read
    assert json.loads(dvc_without_venv("plots", "diff", "HEAD", "--json", cwd=tmp))  # both revisions' curves

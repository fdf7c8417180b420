"""A good run promoted, then a run that learned nothing refused as a regression; then an edit to a module `train`
imports making it stale. On its own copy of the project (tests/pipeline/dvc_project.py)."""

import pytest

from graft.core import config
from graft.core.artifacts import read_json
from graft.promote import registry
from tests.pipeline.dvc_project import new_project, sh
from tests.shrink import shrunk_params, write_params


def good_params(tmp) -> dict:
    """Params that train a real model even on 120 rows (macro-F1 ~0.8)."""
    params = shrunk_params(tmp)
    params["validate"]["profile_dir"] = "data/profiles"
    params["data"]["cutoff"] = "2016-09-30"
    params["train"].update(epochs=4, learning_rate=3e-4)
    params["selfcheck"]["top_n"] = 1  # the selection audit and the explanations are tested elsewhere: kept small
    params["explain"].update(n=10, steps=4, scratch=False)
    return params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return new_project(tmp_path_factory.mktemp("regression")), None


def test_a_candidate_that_learned_nothing_is_refused_as_a_regression(project):
    """A good run becomes champion; then a run whose learning rate is 1e-12 (its weights never move) is refused."""
    tmp, _ = project
    params = good_params(tmp)
    write_params(tmp, params)
    sh("dvc", "repro", "gate", cwd=tmp)  # what `make run` runs: the promotion path, not the curve experiment
    reg = config.load(tmp / "params.yaml").registry
    good = registry.champion(reg)["version"]
    assert read_json(tmp / "metrics" / "gate.json")["registered"]["version"] == good
    params["train"].update(learning_rate=1e-12, head_learning_rate=1e-12)
    write_params(tmp, params)
    res = sh("dvc", "repro", "gate", cwd=tmp, check=False)
    assert res.returncode != 0 and "Running stage 'gate'" in res.stdout
    refusal = [line for line in res.stderr.splitlines() if line.startswith("graft gate: FAILED")]
    assert len(refusal) == 1 and "non_regression" in refusal[0] and "REGRESSION" in refusal[0]
    verdict = read_json(tmp / "metrics" / "gate.json")
    assert verdict["passed"] is False and verdict["registered"] is None
    assert registry.champion(reg)["version"] == good
    client = __import__("mlflow").MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    assert max(int(v.version) for v in client.search_model_versions(f"name = '{reg.model_name}'")) == good
    out = sh("graft", "report", "--metrics-dir", "metrics", "--splits", "data/prepared", "--out", "reports/run.html",
             cwd=tmp).stdout
    assert "reports/run.html" in out and "reports/runs.html" in out
    assert "<b>REFUSED</b>" in (tmp / "reports" / "run.html").read_text()
    index = (tmp / "reports" / "runs.html").read_text()
    assert "refused: non_regression" in index and f"promoted as v{good} (champion)" in index


def test_with_approval_required_the_passing_run_waits_as_challenger_until_a_person_approves(project):
    """The good params again, gate.approval: required: evaluate re-scores the champion, the gate passes, and the
    candidate gets the alias challenger; `graft approve` re-checks it and moves the champion; the log has both."""
    tmp, _ = project
    params = good_params(tmp)
    params["gate"]["approval"] = "required"
    write_params(tmp, params)
    reg = config.load(tmp / "params.yaml").registry
    before = registry.champion(reg)["version"]
    res = sh("dvc", "repro", "gate", cwd=tmp)
    assert "is now 'challenger'" in res.stdout and "awaiting approval" in res.stdout
    verdict = read_json(tmp / "metrics" / "gate.json")
    challenger = verdict["registered"]["version"]
    assert verdict["registered"]["alias"] == "challenger" and registry.champion(reg)["version"] == before
    assert "awaiting approval" in sh("graft", "summary", "--metrics-dir", "metrics", "--package", "models/onnx",
                                     cwd=tmp).stdout
    sh("graft", "approve", "--version", str(challenger), "--by", "alice", "--note", "checked the errors", cwd=tmp)
    assert registry.champion(reg)["version"] == challenger
    log = sh("graft", "history", cwd=tmp).stdout.splitlines()
    assert log[-2].split()[2:7] == ["gate", "challenger:", "none", "->", f"v{challenger}"]
    assert log[-1].split()[2:7] == ["approve", "champion:", f"v{before}", "->", f"v{challenger}"]
    assert "by alice: checked the errors" in log[-1]
    sh("graft", "report", "--metrics-dir", "metrics", "--splits", "data/prepared", "--out", "reports/run.html", cwd=tmp)
    index = (tmp / "reports" / "runs.html").read_text()
    moves = index[index.index('id="moves"'):]
    assert "<td>approve</td><td>champion</td>" in moves and "checked the errors" in moves and "alice" in moves


def test_editing_a_module_train_imports_makes_train_stale(project):
    tmp, _ = project
    scores = tmp / "src" / "graft" / "metrics" / "scores.py"  # train picks its best epoch by macro-F1
    original = scores.read_text()
    assert "Data and pipelines are up to date" in sh("dvc", "status", "train", cwd=tmp).stdout
    scores.write_text(original + "\n# an edit\n")
    try:
        status = sh("dvc", "status", "train", cwd=tmp).stdout
        assert "train:" in status and "modified:" in status and "src/graft/metrics" in status
    finally:
        scores.write_text(original)

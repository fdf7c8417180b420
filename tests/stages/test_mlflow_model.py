"""The registered version is an MLflow model: pyfunc loads it and `mlflow models serve` answers, like graft predict."""

import os
import subprocess
import sys
import time

import mlflow
import pandas as pd
import pytest
import requests

from graft.data.tables import read_splits
from graft.serve.client import free_port
from graft.serve.predict import Package


@pytest.fixture(scope="module")
def uri(stage_run, shrunk):
    """models:/NAME@champion of the shrunk run's registry, with MLflow pointed at that registry."""
    reg = shrunk[1].registry
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = reg.tracking_uri
    yield f"models:/{reg.model_name}@{reg.alias}"
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI")
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="module")
def texts(stage_run):
    return read_splits(stage_run["splits"])["test"]["text"].astype(str).tolist()[:20]


def test_pyfunc_loads_the_champion_and_predicts_like_graft_predict(stage_run, uri, texts):
    model = mlflow.pyfunc.load_model(uri)
    got = model.predict(pd.DataFrame({"text": texts}))
    expected = Package(stage_run["onnx"]).predict(texts)
    assert got["label"].tolist() == [e["label"] for e in expected]
    labels = Package(stage_run["onnx"]).labels
    assert list(got.columns) == ["label", *(f"probability_{lab}" for lab in labels)]
    for i, e in enumerate(expected):
        assert abs(got.iloc[i][f"probability_{labels[0]}"] - e["probabilities"][labels[0]]) < 1e-5


def test_the_version_has_a_signature_an_input_example_and_the_card_as_description(stage_run, shrunk, uri):
    info = mlflow.models.get_model_info(uri)
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["text"]
    assert "label" in [c["name"] for c in info.signature.outputs.to_dict()]
    assert info.flavors["python_function"]["loader_module"] == "graft.serve.pyfunc"
    reg = shrunk[1].registry
    client = mlflow.MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    mv = client.get_model_version_by_alias(reg.model_name, reg.alias)
    assert mv.description.startswith("# Model card: ") and mv.tags["graft.gate"] == "passed"


def test_mlflow_models_serve_answers_like_graft_predict(stage_run, uri, texts, tmp_path):
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 (the process writes it while it runs)
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mlflow"), "models", "serve", "-m", uri,
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        body = {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}
        r = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=60)
        assert r.status_code == 200, r.text
        rows = r.json()["predictions"]
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert [row["label"] for row in rows] == [e["label"] for e in Package(stage_run["onnx"]).predict(texts)]


def test_the_versions_run_holds_the_training_curves_one_step_per_epoch(stage_run, shrunk):
    from graft.core.artifacts import read_json

    reg = shrunk[1].registry
    client = mlflow.MlflowClient(tracking_uri=reg.tracking_uri, registry_uri=reg.tracking_uri)
    run_id = client.get_model_version_by_alias(reg.model_name, reg.alias).run_id
    trained = read_json(stage_run["evaluate"])["training"]
    assert set(trained) >= {"finetune", "scratch"}
    for model, history in trained.items():
        logged = client.get_metric_history(run_id, f"train.{model}.val_macro_f1")
        assert sorted((m.step, m.value) for m in logged) == [(r["epoch"], r["val_macro_f1"]) for r in history]
        assert len(client.get_metric_history(run_id, f"train.{model}.train_loss")) == len(history)

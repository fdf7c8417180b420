"""Shared fixtures (loaded by the root conftest.py): offline env, the corpus, the shrunk config, a full run."""

import os
import sys
from pathlib import Path

import pytest

from tests.shrink import shrunk_image_params, shrunk_params, write_params

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_ENABLE_TELEMETRY": "false",
    "TOKENIZERS_PARALLELISM": "false",
}


@pytest.fixture(scope="session", autouse=True)
def offline_env():
    """Nothing in the tests may reach a hub; the venv's console scripts (graft, dvc) come first on PATH."""
    saved = dict(os.environ)
    os.environ.update(OFFLINE_ENV)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def raw_file(tmp_path_factory) -> Path:
    """A private copy of the default election-tweets corpus."""
    from graft.data.tables import materialize

    return materialize(tmp_path_factory.mktemp("raw") / "election-tweets-2016.tab")


@pytest.fixture(scope="session")
def target_files(raw_file, tmp_path_factory) -> Path:
    """A target domain from September tweets (after the shrunk cutoff): pool.csv, 150 unlabeled texts, and
    labeled.csv, 100 labeled ones."""
    from graft.core.formats import read_file

    folder = tmp_path_factory.mktemp("target")
    df = read_file(raw_file)
    sep = df[df["Time"].astype(str) >= "2016-09-01"]
    sep[["Content"]].iloc[:150].to_csv(folder / "pool.csv", index=False)
    sep[["Content", "Author"]].iloc[150:250].to_csv(folder / "labeled.csv", index=False)
    return folder


def _shrunk(tmp_path_factory, name: str, make_params, raw: Path):
    from graft.core import config

    folder = tmp_path_factory.mktemp(name)
    params = make_params(folder)
    params["data"]["raw"] = str(raw)
    return params, config.load(write_params(folder, params))


@pytest.fixture(scope="session")
def shrunk(tmp_path_factory, raw_file):
    """(params dict, Config) of the shrunk pipeline, with its own registry folder."""
    return _shrunk(tmp_path_factory, "shrunk", shrunk_params, raw_file)


def run_every_stage(cfg, out: Path, audit: bool = True) -> dict:
    """Every stage of the library, in order, into `out`; the paths they wrote and the gate's verdict.

    `audit`: evaluate also scores selfcheck's runners-up against the ranking.
    """
    from graft import evaluate, explain, select, train
    from graft.core.artifacts import read_json
    from graft.data import prepare
    from graft.data.tables import read_splits
    from graft.data.validate import validate_tables
    from graft.promote import gate
    from graft.select import selfcheck
    from graft.serve import export

    p = {name: out / name for name in ("splits", "finetune", "scratch", "runners_up", "onnx")}
    p.update({name: out / f"{name}.json" for name in ("select", "train", "baseline", "selfcheck", "evaluate",
                                                      "explain", "export")})
    p["explain_html"] = out / "explain.html"
    prepare.run(cfg.data.raw, p["splits"], cfg)
    report = validate_tables(read_splits(p["splits"]), cfg)
    assert report.passed, [c for c in report.checks if not c.passed]
    select.run(p["splits"], cfg, p["select"])
    train.run(p["splits"], p["select"], p["finetune"], cfg, "pretrained", p["train"])
    train.run(p["splits"], p["select"], p["scratch"], cfg, "scratch", p["baseline"])
    selfcheck.run(p["splits"], p["select"], p["runners_up"], cfg, p["selfcheck"])
    evaluate.run(p["splits"], p["finetune"], p["scratch"], cfg, p["evaluate"],
                 **({"selection": p["select"], "runners_up": p["runners_up"]} if audit else {}))
    explain.run(p["splits"], p["finetune"], p["scratch"], cfg, p["explain"], p["explain_html"],
                evaluation=p["evaluate"])
    export.run(p["finetune"], p["splits"], cfg, p["onnx"], p["export"])
    p["verdict"] = gate.decide(read_json(p["evaluate"]), read_json(p["export"]), cfg.gate, read_json(p["explain"]))
    return p


@pytest.fixture(scope="session")
def stage_run(tmp_path_factory, shrunk):
    """Every stage of the library on the shrunk config, the candidate registered; returns the paths they wrote."""
    from graft.core.artifacts import read_json
    from graft.promote import registry

    _, cfg = shrunk
    p = run_every_stage(cfg, tmp_path_factory.mktemp("run"))
    p["registered"] = registry.promote(p["onnx"], p["splits"], cfg, read_json(p["evaluate"]),
                                       read_json(p["export"]), p["verdict"])
    return p


@pytest.fixture(scope="session")
def image_raw(tmp_path_factory) -> Path:
    """The first 200 images of each Fashion-MNIST file as an image table (Parquet of PNG bytes)."""
    from graft.modalities.image.pixels import fashion_mnist_table

    path = tmp_path_factory.mktemp("image-raw") / "fashion-mnist-small.parquet"
    fashion_mnist_table(rows=200).to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def image_shrunk(tmp_path_factory, image_raw):
    """(params dict, Config) of the shrunk image pipeline, with its own registry folder."""
    return _shrunk(tmp_path_factory, "image-shrunk", shrunk_image_params, image_raw)

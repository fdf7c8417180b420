"""The `validate` component through kfp.local: a bad data set stops the pipeline at validation."""

from pathlib import Path

import pandas as pd
import pytest
from graft_kfp.components.prepare.component import prepare
from graft_kfp.components.validate.component import validate
from kfp import dsl

from graft.core import config
from tests.shrink import shrunk_params


def run(tmp_path, raw: str):
    from kfp import local

    params = shrunk_params(tmp_path)
    params["data"].update(raw=raw, text_column="text", label_column="label")
    params["data"].pop("time_column")
    params["data"].pop("cutoff")
    params["prepare"] = {"test_size": 20, "validation_size": 20, "train_size": "all"}
    cfg = config.from_dict(params).to_dict()

    @dsl.pipeline(name="validate-only")
    def check(config: dict = cfg):
        validate(config=config, splits=prepare(config=config, source="").outputs["splits"])

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    check()


def table(n=100):
    labels = ["HillaryClinton", "realDonaldTrump"]
    return pd.DataFrame({"text": [f"text {i}" for i in range(n)], "label": [labels[i % 2] for i in range(n)]})


def test_valid_data_passes(tmp_path):
    table().to_csv(tmp_path / "ok.csv", index=False)
    run(tmp_path, str(tmp_path / "ok.csv"))


def test_unknown_label_fails_the_pipeline(tmp_path):
    df = table()
    df.loc[df.index[::7], "label"] = "BernieSanders"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RuntimeError, match="Inner task failed: .*validate"):
        run(tmp_path, str(tmp_path / "bad.csv"))


def test_the_function_passes_good_splits_and_logs_its_checks(chain):
    out = chain.validate
    assert out.report.metadata["failed"] == 0 and out.report.metadata["checks"] > 10
    assert "Data validation: PASSED" in Path(out.docs.path).read_text()


def test_the_function_raises_one_line_per_failed_check(chain, tmp_path):
    import shutil

    from kfp import dsl

    bad = tmp_path / "splits"
    shutil.copytree(chain.prepare.splits.path, bad)
    train = pd.read_parquet(bad / "train.parquet")
    train.loc[train.index[::5], "label"] = "BernieSanders"
    train.to_parquet(bad / "train.parquet", index=False)
    splits = dsl.Dataset(name="splits", uri=str(bad), metadata={})
    with pytest.raises(RuntimeError, match=r"data validation failed:\n.*train.*label_in_set.*'BernieSanders'"):
        chain.call(validate, "bad", splits=splits, outputs={"report": dsl.Metrics, "docs": dsl.HTML})

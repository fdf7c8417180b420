"""The `prepare` component alone through kfp.local."""

import json
from pathlib import Path

import pandas as pd
from graft_kfp.components.prepare.component import prepare

from graft.core import config
from tests.shrink import shrunk_params


def test_prepare_component_writes_split_dataset(tmp_path, raw_file):
    from kfp import local

    cfg = config.from_dict({**shrunk_params(tmp_path), "data": {
        **shrunk_params(tmp_path)["data"], "raw": str(raw_file)}}).to_dict()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    task = prepare(config=cfg, source="")
    splits = task.outputs["splits"]
    assert splits.metadata == {"train_rows": 120, "validation_rows": 40, "test_rows": 60, "data_md5": ""}
    folder = Path(splits.path)
    assert len(pd.read_parquet(folder / "test.parquet")) == 60
    assert json.loads((folder / "manifest.json").read_text())["rows"]["train"] == 120


def test_the_function_splits_and_tags_the_dataset_with_the_data_md5(chain):
    splits = chain.prepare.splits
    assert splits.metadata == {"train_rows": 120, "validation_rows": 40, "test_rows": 60,
                               "data_md5": chain.freshness.value}
    # the chain's config has a target domain: its pool and labeled test lie beside the splits
    assert sorted(p.name for p in Path(splits.path).glob("*.parquet")) == [
        "target.parquet", "target_test.parquet", "test.parquet", "train.parquet", "validation.parquet"]

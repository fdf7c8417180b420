import pytest

from graft.core import config
from graft.core.errors import GraftError
from tests.shrink import ROOT, write_params


def test_params_yaml_is_valid_and_round_trips():
    cfg = config.load(ROOT / "params.yaml")
    assert cfg.data.labels == ["HillaryClinton", "realDonaldTrump"]
    assert {c.name for c in cfg.select.candidates} >= {"minilm-l6", "minilm-l6-first3"}
    assert config.from_dict(cfg.to_dict()) == cfg


def test_unknown_key_is_an_error_naming_the_field(tmp_path):
    raw = config.load(ROOT / "params.yaml").to_dict()
    raw["train"]["epoch"] = 3
    with pytest.raises(GraftError, match=r"train\.epoch"):
        config.load(write_params(tmp_path, raw))


def test_missing_file_and_bad_yaml_are_one_line_errors(tmp_path):
    with pytest.raises(GraftError, match="params file not found"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(GraftError, match="not valid YAML"):
        config.load(bad)


def test_sizes_survive_kfp_struct_floats():
    raw = config.load(ROOT / "params.yaml").to_dict()
    raw["prepare"] = {"test_size": 1000.0, "validation_size": 0.2, "train_size": "all"}
    cfg = config.from_dict(raw)
    assert cfg.prepare.test_size == 1000 and isinstance(cfg.prepare.test_size, int)
    assert cfg.prepare.validation_size == 0.2
    raw["prepare"]["test_size"] = 10.5
    with pytest.raises(GraftError, match="prepare.test_size"):
        config.from_dict(raw)


def test_duplicate_candidate_names_rejected():
    raw = config.load(ROOT / "params.yaml").to_dict()
    raw["select"]["candidates"].append(dict(raw["select"]["candidates"][0]))
    with pytest.raises(GraftError, match="unique"):
        config.from_dict(raw)

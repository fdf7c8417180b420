import pandas as pd
import pytest

from graft.core import config
from graft.core.errors import GraftError
from graft.data import prepare
from tests.shrink import ROOT


def cfg_with(**sizes):
    raw = config.load(ROOT / "params.yaml").to_dict()
    raw["prepare"] = sizes
    return config.from_dict(raw)


def table(n=200):
    return pd.DataFrame({"text": [f"tweet number {i}" for i in range(n)],
                         "label": ["a" if i % 4 else "b" for i in range(n)]})


def test_split_is_deterministic_stratified_and_disjoint():
    cfg = cfg_with(test_size=40, validation_size=20, train_size="all")
    one, two = prepare.split(table(), cfg), prepare.split(table(), cfg)
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(one[name], two[name])
    assert [len(one[s]) for s in ("train", "validation", "test")] == [140, 20, 40]
    assert (one["test"]["label"] == "b").sum() == 10  # a quarter, as in the whole table
    texts = [set(one[s]["text"]) for s in ("train", "validation", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_another_seed_gives_another_split():
    cfg = cfg_with(test_size=40, validation_size=20, train_size="all")
    other = config.from_dict({**cfg.to_dict(), "seed": 7})
    assert set(prepare.split(table(), cfg)["test"]["text"]) != set(prepare.split(table(), other)["test"]["text"])


def test_fractions_and_counts():
    parts = prepare.split(table(), cfg_with(test_size=0.25, validation_size=0.2, train_size=50))
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [50, 30, 50]


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(GraftError, match=r"prepare.test_size=500 but only 200"):
        prepare.split(table(), cfg_with(test_size=500, validation_size=10, train_size="all"))


def test_clean_strips_and_drops_exact_duplicates():
    df = pd.DataFrame({"text": ["  hello ", "hello", "world"], "label": ["a", "b", "a"],
                       "time": ["2016-01-05 03:36:53", "bad", "2016-09-28 00:22:34"]})
    out = prepare.clean(df, "text")
    assert out["text"].tolist() == ["hello", "world"]
    assert out["time"].tolist() == ["2016-01-05T03:36:53Z", "2016-09-28T00:22:34Z"]


def test_a_split_column_is_kept_and_missing_splits_are_carved_from_train():
    df = table(100).assign(split=["test"] * 20 + ["train"] * 80)
    parts = prepare.split(df, cfg_with(test_size=5, validation_size=10, train_size=5))
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [70, 10, 20]
    assert set(parts["test"]["text"]) == set(df["text"][:20]) and "split" not in parts["test"]


def test_an_unknown_split_value_is_an_error():
    with pytest.raises(GraftError, match=r"unknown split value\(s\) \['holdout'\]"):
        prepare.split(table(40).assign(split=["train"] * 30 + ["holdout"] * 10), cfg_with(test_size=5,
                                                                                         validation_size=5))

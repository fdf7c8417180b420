"""Each test breaks the data in one way a real data set breaks, and checks the suite names it."""

import hashlib
import subprocess

import pandas as pd
import pytest

from graft import config
from graft.validate import validate_tables
from tests.shrink import ROOT, write_params

LABELS = ["HillaryClinton", "realDonaldTrump"]


@pytest.fixture(scope="module")
def cfg():
    return config.load(ROOT / "params.yaml")


def good(n=40, prefix="t"):
    return pd.DataFrame({"text": [f"{prefix} text {i}" for i in range(n)], "label": [LABELS[i % 2] for i in range(n)]})


def failed(report):
    return [(c.table, c.name) for c in report.checks if not c.passed]


def test_clean_splits_pass(cfg):
    report = validate_tables({"train": good(prefix="a"), "validation": good(10, "b"), "test": good(10, "c")}, cfg)
    assert report.passed, report.failures("x")
    assert {c.name for c in report.checks} >= {"schema", "label_in_set", "min_rows_per_class", "no_train_overlap"}


def test_missing_label_column_is_one_schema_failure(cfg):
    report = validate_tables({"data": good().drop(columns="label")}, cfg, "data")
    assert failed(report) == [("data", "schema")]
    assert "required column 'label' missing" in report.failures("f.csv")[0]


def test_unknown_label_is_named_with_its_row(cfg):
    df = good()
    df.loc[7, "label"] = "BernieSanders"
    report = validate_tables({"data": df}, cfg, "data")
    assert failed(report) == [("data", "label_in_set")]
    line = report.failures("f.csv")[0]
    assert "'BernieSanders'" in line and "(rows 8)" in line


def test_blank_and_null_texts_fail(cfg):
    df = good()
    df.loc[3, "text"] = "   "
    df.loc[5, "text"] = None
    assert set(failed(validate_tables({"data": df}, cfg, "data"))) == {("data", "text_not_blank"),
                                                                      ("data", "text_not_null")}


def test_too_few_rows_of_a_class(cfg):
    df = good(40)
    df = df[(df["label"] == LABELS[0]) | (df.index < 6)]  # 3 rows of the second class
    report = validate_tables({"train": df}, cfg)
    assert failed(report) == [("train", "min_rows_per_class")]
    assert "realDonaldTrump=3" in report.failures("x")[0]


def test_train_test_leakage(cfg):
    train, test = good(prefix="a"), good(10, "b")
    test.loc[2, "text"] = train.loc[11, "text"]
    report = validate_tables({"train": train, "validation": good(10, "c"), "test": test}, cfg)
    assert failed(report) == [("test", "no_train_overlap")]
    assert "a text 11" in report.failures("x")[0]


def registry_state(folder):
    db = folder / "mlflow.db"
    return hashlib.md5(db.read_bytes()).hexdigest() if db.exists() else None


@pytest.mark.parametrize("breakage, expected", [
    ("no_label", "required column 'label' missing"),
    ("unknown_label", "unknown label 'BernieSanders'"),
])
def test_cli_rejects_bad_user_file_with_one_line_and_exit_1(tmp_path, breakage, expected):
    params = config.load(ROOT / "params.yaml").to_dict()
    params["registry"]["tracking_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_params(tmp_path, params)
    df = good()
    if breakage == "no_label":
        df = df.drop(columns="label")
    else:
        df.loc[4, "label"] = "BernieSanders"
    data = tmp_path / "mine.csv"
    df.to_csv(data, index=False)
    before = registry_state(tmp_path)
    res = subprocess.run(["graft", "validate", "--data", str(data)], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(data) in lines[0]
    assert "Traceback" not in res.stderr
    assert registry_state(tmp_path) == before


def test_cli_accepts_a_valid_parquet_file(tmp_path):
    data = tmp_path / "mine.parquet"
    good().to_parquet(data)
    res = subprocess.run(["graft", "validate", "--params", str(ROOT / "params.yaml"), "--data", str(data)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "checks passed" in res.stdout


def test_cli_reads_the_raw_corpus_columns(raw_file):
    res = subprocess.run(["graft", "validate", "--params", str(ROOT / "params.yaml"), "--data", str(raw_file)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_cli_unreadable_file(tmp_path):
    bad = tmp_path / "x.xlsx"
    bad.write_text("nope")
    res = subprocess.run(["graft", "validate", "--params", str(ROOT / "params.yaml"), "--data", str(bad)],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "unsupported file type" in res.stderr and "Traceback" not in res.stderr

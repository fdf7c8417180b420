"""Each test breaks the data in one way a real data set breaks, and checks the suite names it."""

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from graft.core import config
from graft.data.validate import validate_tables
from tests.shrink import ROOT, said, write_params

LABELS = ["HillaryClinton", "realDonaldTrump"]


@pytest.fixture(scope="module")
def cfg():
    return config.load(ROOT / "params.yaml")


def good(n=40, prefix="t"):
    return pd.DataFrame({"text": [f"{prefix} text {i}" for i in range(n)], "label": [LABELS[i % 2] for i in range(n)]})


def failed(report):
    return [(c.table, c.name) for c in report.checks if not c.passed]


def test_clean_splits_pass(cfg):
    report = validate_tables({"train": good(prefix="a"), "validation": good(20, "b"), "test": good(20, "c")}, cfg)
    assert report.passed, report.failures("x")
    assert {c.name for c in report.checks} >= {"schema", "label_in_set", "min_rows_per_class", "no_train_overlap"}


def test_missing_label_column_is_one_schema_failure(cfg):
    report = validate_tables({"data": good().drop(columns="label")}, cfg, "data")
    assert failed(report) == [("data", "schema")]
    line = report.failures("f.csv")[0]  # the file's name for it (data.label_column), and the setting to change
    assert "required column 'Author' missing" in line and "name the file's column in data.label_column" in line


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


def test_train_test_leakage_up_to_case_and_punctuation(cfg):
    train, test = good(prefix="a"), good(20, "b")
    test.loc[2, "text"] = "A  TEXT 11!"  # train has "a text 11"
    report = validate_tables({"train": train, "validation": good(20, "c"), "test": test}, cfg)
    assert failed(report) == [("test", "no_train_overlap")]
    assert "'a text 11'" in report.failures("x")[0] and "(rows 3)" in report.failures("x")[0]


def registry_state(folder):
    db = folder / "mlflow.db"
    return hashlib.md5(db.read_bytes()).hexdigest() if db.exists() else None


@pytest.mark.parametrize("breakage, expected", [
    ("no_label", "required column 'Author' missing"),
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
    lines = said(res.stderr)
    assert len(lines) == 1 and expected in lines[0] and str(data) in lines[0]
    assert "Traceback" not in res.stderr
    assert registry_state(tmp_path) == before


def test_cli_accepts_a_valid_parquet_file(tmp_path):
    data = tmp_path / "mine.parquet"
    good().to_parquet(data)
    res = subprocess.run(["graft", "validate", "--params", str(ROOT / "params.yaml"), "--data", str(data),
                          "--file-only"], capture_output=True, text=True)  # 40 rows: no room for 1,000 test rows
    assert res.returncode == 0, res.stderr
    assert "checks passed" in res.stdout


# Each malformed file breaks one thing; the check that must name it (files written by make_cases.py).
BAD = {
    "empty.csv": "format", "header_only.csv": "row_count", "missing_text_column.csv": "schema",
    "missing_label_column.csv": "schema", "wrong_delimiter.csv": "format", "non_utf8.csv": "encoding",
    "binary_garbage.csv": "format", "excel_renamed.csv": "format", "null_texts.parquet": "text_not_null",
    "null_tokens.csv": "text_not_null",
    "whitespace_texts.csv": "text_not_blank", "unknown_label.csv": "label_in_set",
    "single_class.csv": "min_rows_per_class", "mass_duplicates.csv": "exact_duplicates",
    "near_duplicates.csv": "normalized_duplicates", "huge_cell.csv": "text_length",
    "numeric_labels.csv": "label_in_set", "control_chars.csv": "text_control_chars",
    "imbalanced.csv": "imbalance_ratio", "broken_line.jsonl": "format", "numbers_as_text.parquet": "text_type",
    "csv_named_parquet.parquet": "format", "spreadsheet.xlsx": "format", "train_test_leakage.csv": "no_train_overlap",
    "unknown_split.csv": "split",
}
CASES = Path(__file__).parent


def test_every_bad_file_has_an_expected_check():
    assert sorted(p.name for p in (CASES / "bad").iterdir()) == sorted(BAD)


def validate_cli(path: Path, capsys) -> tuple[int, str]:
    """`graft validate --data PATH --file-only` in this process (the subprocess tests above cover the console
    script; these files are too small for the default split sizes, which tests/unit/test_intake.py covers)."""
    from graft import cli

    code = cli.main(["validate", "--params", str(ROOT / "params.yaml"), "--data", str(path), "--file-only"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_file_is_rejected_with_one_line_naming_the_check(name, capsys):
    path = CASES / "bad" / name
    code, err = validate_cli(path, capsys)
    lines = said(err)  # besides the timestamped start and end lines
    assert code == 1 and len(lines) == 1, err
    assert f"{path}: " in lines[0] and f": {BAD[name]}: " in lines[0]
    if name == "train_test_leakage.csv":
        assert "(rows 66)" in lines[0]  # the row of the file, not of the test table


@pytest.mark.parametrize("name", sorted(p.name for p in (CASES / "ok").iterdir()))
def test_awkward_but_valid_file_passes(name, capsys):
    code, err = validate_cli(CASES / "ok" / name, capsys)
    assert code == 0, err


def test_awkward_csv_is_read_faithfully():
    from graft.data.tables import read_table

    cfg = config.load(ROOT / "params.yaml")
    df = read_table(CASES / "ok" / "quoted_multiline.csv", cfg.data)
    assert df.loc[0, "text"] == 'He said "jobs, jobs, jobs",\nthen left.' and len(df) == 40
    assert read_table(CASES / "ok" / "records.jsonl", cfg.data).loc[0, "text"].startswith("Vote \U0001f1fa")


def test_cli_reads_the_raw_corpus_columns(raw_file):
    res = subprocess.run(["graft", "validate", "--params", str(ROOT / "params.yaml"), "--data", str(raw_file)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    # the splits prepare will make of it, checked as the validate stage checks them
    assert "as prepared (prepare: train 500, validation 250, test 1000): all" in res.stdout
    assert "prepare will write train=500 (smallest class" in res.stdout


def version(mix: tuple[int, int]) -> dict[str, pd.DataFrame]:
    """A data version of `mix` rows per label, split into three tables with the same vocabulary."""
    n = sum(mix)
    df = pd.DataFrame({"text": [f"Campaign message number {i} about jobs" for i in range(n)],
                       "label": [LABELS[0]] * mix[0] + [LABELS[1]] * mix[1]}).sample(frac=1, random_state=0)
    return {"train": df.iloc[: n // 2], "validation": df.iloc[n // 2: 3 * n // 4], "test": df.iloc[3 * n // 4:]}


def test_drift_against_the_previous_version(cfg, tmp_path):
    from graft.data.validate import run

    store = config.from_dict({**cfg.to_dict(), "validate": {**cfg.to_dict()["validate"],
                                                            "profile_dir": str(tmp_path / "profiles")}})
    first = run(version((100, 100)), store, "v1", report=tmp_path / "v1.json", docs=tmp_path / "docs")
    assert first.passed and [c.detail for c in first.checks if c.table == "version"] == [
        "first validated version: no reference to compare with"]
    assert len(list((tmp_path / "profiles").glob("*.json"))) == 1
    shifted = run(version((180, 20)), store, "v2", report=tmp_path / "v2.json")
    assert not shifted.passed
    (line,) = shifted.failures("v2")
    assert "label_js: label mix: label_js=0.14" in line and "fail > 0.1" in line
    assert len(list((tmp_path / "profiles").glob("*.json"))) == 1  # a failed version is not a reference
    report = json.loads((tmp_path / "v2.json").read_text())
    drift_row = next(c for c in report["checks"] if c["name"] == "label_js")
    assert drift_row["threshold"] == {"warn": 0.02, "fail": 0.1} and drift_row["passed"] is False


def test_docs_folder_holds_data_docs_and_a_single_page_summary(cfg, tmp_path):
    from graft.data.validate import run

    run(version((40, 40)), cfg, "v", docs=tmp_path / "docs", drift=False)
    site = tmp_path / "docs"
    assert (site / "index.html").is_file() and list((site / "validations").rglob("*.html"))
    page = (site / "summary.html").read_text()
    assert "Data validation: PASSED" in page and "label_in_set" in page and "<iframe srcdoc=" in page
    assert "http://" not in page.split("<iframe")[0]  # the summary itself loads nothing from the network
    assert not re.search(r"""<(?:link|script|img)\b[^>]*(?:src|href)=&quot;https?:""", page)  # nor its iframes


def test_data_docs_render_styled_from_their_own_assets_in_a_browser(cfg, tmp_path):
    """GX's templates load Bootstrap, jQuery and Font Awesome from CDNs: the site serves its own copies."""
    from playwright.sync_api import sync_playwright

    from graft.data.validate import run

    run(version((40, 40)), cfg, "v", docs=tmp_path / "docs", drift=False)
    site = tmp_path / "docs"
    pages = [site / "index.html", next((site / "validations").rglob("*.html"))]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        for path in pages:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requested, failed = [], []
            page.on("request", lambda r: requested.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            font = page.evaluate("getComputedStyle(document.body).fontFamily")
            icons = page.evaluate("getComputedStyle(document.querySelector('.fas, .fa'), '::before').fontFamily")
            jquery = page.evaluate("typeof window.jQuery")
            page.screenshot(path=str(tmp_path / f"{path.stem}.png"))
            assert [u for u in requested if not u.startswith(site.as_uri())] == [], path  # nothing external
            assert failed == [] and "-apple-system" in font, (path, failed, font)  # Bootstrap 4's font stack
            assert "Font Awesome" in icons and jquery == "function", (icons, jquery)
        browser.close()


def test_text_length_bounds_apply_to_non_blank_texts(cfg):
    raw = cfg.to_dict()
    raw["validate"]["min_text_chars"] = 5
    strict = config.from_dict(raw)
    df = good()
    df.loc[[3, 4], "text"] = ["ok", ""]
    report = validate_tables({"data": df}, strict, "data")
    assert sorted(failed(report)) == [("data", "text_length"), ("data", "text_not_blank")]
    line = next(f for f in report.failures("f.csv") if "text_length" in f)
    assert "outside 5..20000 characters" in line and "(rows 4)" in line

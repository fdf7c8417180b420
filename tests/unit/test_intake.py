"""`graft init`: column detection, the sizing rule, imbalance, params.yaml edited in place, idempotence, refusals."""

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from graft.cli import main
from graft.core import config
from graft.data import prepare
from tests.shrink import ROOT

WORDS = ("market profit share rate bank oil ship grain trade deal price export growth loss fund bond court vote "
         "team match goal season coach player city road rain storm").split()


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{' '.join(rng.choices(WORDS, k=rng.randint(4, 12)))} number {seed}-{i}" for i in range(n)]


def table(counts: dict[str, int], **extra) -> pd.DataFrame:
    labels = [lb for lb, n in counts.items() for _ in range(n)]
    df = pd.DataFrame({"body": texts(len(labels), 1), "topic": labels})
    for name, make in extra.items():
        df[name] = make(len(df))
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture
def workspace(tmp_path):
    """A workspace with the project's real params.yaml (comments and all)."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def init(workspace: Path, data: Path, *flags: str) -> int:
    return main(["init", "--data", str(data), "--params", str(workspace / "params.yaml"), *flags])


def written(workspace: Path) -> dict:
    return yaml.safe_load((workspace / "params.yaml").read_text())


def test_columns_are_found_by_type_cardinality_and_parse_rate(workspace, capsys):
    df = table({"sport": 150, "business": 120, "politics": 90},
               id=lambda n: range(n), score=lambda n: [i / 7 for i in range(n)],
               created=lambda n: pd.date_range("2024-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M"))
    df.to_csv(workspace / "articles.csv", index=False)
    assert init(workspace, workspace / "articles.csv", "--dry-run") == 0
    out = capsys.readouterr().out
    for line in ("data.text_column", "body"), ("data.label_column", "topic"), ("data.time_column", "created"):
        assert any(line[0] in row and f": {line[1]}" in row for row in out.splitlines()), out
    assert "labels: [sport, business, politics]" in out  # the label set from the file, most frequent first
    assert "registry.model_name" in out and "+  model_name: articles" in out


def test_dry_run_writes_nothing(workspace, capsys):
    table({"a": 60, "b": 60}).to_csv(workspace / "small.csv", index=False)
    before = (workspace / "params.yaml").read_text()
    assert init(workspace, workspace / "small.csv", "--dry-run") == 0
    assert "--- a/" in capsys.readouterr().out
    assert (workspace / "params.yaml").read_text() == before and not (workspace / "data").exists()


def test_ambiguous_columns_are_listed_and_the_flag_settles_them(workspace, capsys):
    df = table({"x": 80, "y": 80})
    df["queue"] = ["q1", "q2", "q3"] * 53 + ["q1"]
    df["subject"] = texts(len(df), 2)
    df.rename(columns={"topic": "group"}).to_csv(workspace / "tickets.csv", index=False)
    params = (workspace / "params.yaml").read_text()
    assert init(workspace, workspace / "tickets.csv") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("graft init: error: more than one column could be the text column")
    assert "body" in err and "subject" in err and "--text-column" in err and len(err.splitlines()) == 1
    assert init(workspace, workspace / "tickets.csv", "--text-column", "body") == 1
    err = capsys.readouterr().err
    assert "could be the label: group (2 values), queue (3 values); pass --label-column" in err
    assert (workspace / "params.yaml").read_text() == params  # refused: untouched
    assert init(workspace, workspace / "tickets.csv", "--text-column", "body", "--label-column", "group") == 0
    assert written(workspace)["data"]["label_column"] == "group"


@pytest.mark.parametrize("case, frame, message", [
    ("one class", lambda: table({"only": 100}), "holds one class only ('only')"),
    ("a class with 4 rows", lambda: table({"big": 200, "tiny": 4}),
     "class 'tiny' has 4 row(s) in total; it needs validate.min_rows_per_class (10)"),
    ("no text column", lambda: pd.DataFrame({"code": ["A1", "B2"] * 50, "label": ["x", "y"] * 50}),
     "no text-like column"),
])
def test_a_file_that_cannot_work_is_one_line_and_params_stay(workspace, capsys, case, frame, message):
    frame().to_csv(workspace / "bad.csv", index=False)
    before = (workspace / "params.yaml").read_text()
    assert init(workspace, workspace / "bad.csv") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert (workspace / "params.yaml").read_text() == before and not (workspace / "data" / "raw").exists()


def test_sizes_give_every_class_its_training_rows_and_imbalance_turns_on_class_weights(workspace, capsys):
    table({"earn": 1500, "acq": 600, "ship": 60, "grain": 25}).to_csv(workspace / "news.csv", index=False)
    assert init(workspace, workspace / "news.csv") == 0
    params = written(workspace)
    cfg = config.from_dict(params)
    floor = cfg.validate_.min_rows_per_class
    assert cfg.prepare.train_size != 500  # 500 of 2,185 rows would give grain ~4 training rows
    # an independent check with the stage's own code: the split prepare will write holds enough of every class
    splits = prepare.split(prepare.clean(pd.read_csv(workspace / "data" / "raw" / "news.csv").rename(
        columns={"body": "text", "topic": "label"}), "text"), cfg)
    counts = splits["train"]["label"].value_counts()
    assert counts.min() >= floor and set(counts.index) == {"earn", "acq", "ship", "grain"}
    assert params["train"]["class_weights"] == "balanced"
    assert params["validate"]["max_imbalance_ratio"] >= counts.max() / counts.min()
    out = capsys.readouterr().out
    assert "train.class_weights" in out and "above validate.max_imbalance_ratio (10.0)" in out
    assert "next: make run" in out and "prepare will write train=" in out


def test_comments_and_other_settings_survive_and_a_second_run_changes_nothing(workspace, capsys):
    table({"a": 300, "b": 200, "c": 100}).to_csv(workspace / "three.csv", index=False)
    original = (workspace / "params.yaml").read_text()
    assert init(workspace, workspace / "three.csv") == 0
    first = (workspace / "params.yaml").read_text()
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in first.splitlines() if line.lstrip().startswith("#")] == comments
    changed = {line.split(":")[0].strip() for line in set(first.splitlines()) ^ set(original.splitlines())}
    assert changed <= {"raw", "text_column", "label_column", "time_column", "labels", "cutoff", "test_size",
                       "validation_size", "train_size", "model_name"}, changed
    old, new = yaml.safe_load(original), yaml.safe_load(first)
    for section in ("select", "train", "gate", "explain", "serve", "evaluate"):
        assert old[section] == new[section]
    assert new["data"]["text_column"] == "body" and new["data"]["time_column"] is None
    capsys.readouterr()
    assert init(workspace, workspace / "three.csv") == 0
    assert (workspace / "params.yaml").read_text() == first
    assert "params.yaml: unchanged" in capsys.readouterr().out


def test_validate_data_forecasts_the_training_split_and_names_the_settings(workspace, capsys):
    """The issue's path: the file passes on its own, but 500 training rows cannot hold 10 of a 51-row class."""
    df = table({"earn": 3000, "acq": 1500, "grain": 51})
    df.rename(columns={"body": "text", "topic": "label"}).to_csv(workspace / "news.csv", index=False)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["data"].update(raw="news.csv", text_column="text", label_column="label", time_column=None, cutoff=None,
                          labels=["earn", "acq", "grain"])
    params["validate"]["max_imbalance_ratio"] = 100.0
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    code = main(["validate", "--data", str(workspace / "news.csv"), "--params", str(workspace / "params.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert "as prepared (prepare: train 500" in err and "min_rows_per_class: class(es) below 10 rows: grain=" in err
    assert "raise prepare.train_size (500) or lower validate.min_rows_per_class (10)" in err
    params["validate"]["max_imbalance_ratio"] = 10.0
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["validate", "--data", str(workspace / "news.csv"), "--params", str(workspace / "params.yaml")]) == 1
    assert ("set train.class_weights: balanced and raise validate.max_imbalance_ratio (10.0) if this imbalance is "
            "real") in capsys.readouterr().err


def test_the_written_params_prepare_and_validate_as_forecast(tmp_path, monkeypatch, capsys):
    """init in a DVC workspace (a real `dvc add`), then the pipeline's prepare and validate stages on what it wrote."""
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(ROOT / "params.yaml", ws / "params.yaml")
    table({"earn": 900, "acq": 300, "ship": 40}).to_csv(tmp_path / "reuters.csv", index=False)
    subprocess.run([str(Path(sys.executable).parent / "dvc"), "init", "-q", "--no-scm"], cwd=ws, check=True)
    monkeypatch.chdir(ws)
    assert main(["init", "--data", str(tmp_path / "reuters.csv")]) == 0
    assert "dvc add data/raw: data.dvc pins the new data" in capsys.readouterr().out
    pinned = yaml.safe_load((ws / "data.dvc").read_text())["outs"][0]
    assert pinned["path"] == "data/raw" and pinned["md5"].endswith(".dir")
    raw = written(ws)["data"]["raw"]
    assert raw == "data/raw/reuters.csv" and (ws / raw).is_file()
    assert main(["prepare", "--raw", raw, "--out", "prepared"]) == 0
    assert main(["validate", "--splits", "prepared"]) == 0
    assert main(["init", "--data", str(tmp_path / "reuters.csv")]) == 0
    again = capsys.readouterr().out
    assert "params.yaml: unchanged" in again and "data.dvc already pins this data" in again


def test_an_image_folder_sets_up_the_image_workspace(tmp_path, capsys):
    from graft.modalities.image.pixels import fashion_mnist_table

    images = fashion_mnist_table(rows=400)
    root = tmp_path / "clothes"
    for label, n in (("Trouser", 60), ("Bag", 40), ("Sandal", 25)):
        (root / label).mkdir(parents=True)
        for i, blob in enumerate(images[images["label"] == label]["image"].head(n)):
            (root / label / f"{i}.png").write_bytes(blob)
    ws = tmp_path / "image"
    ws.mkdir()
    shutil.copy(ROOT / "image" / "params.yaml", ws / "params.yaml")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    assert init(tmp_path, root) == 1  # the text workspace's params
    assert "holds images, but these params are for data.modality 'text'" in capsys.readouterr().err
    assert init(ws, root) == 0
    params = written(ws)
    assert params["data"]["raw"] == "data/raw/clothes" and params["data"]["labels"] == ["Trouser", "Bag", "Sandal"]
    assert sorted(p.name for p in (ws / "data" / "raw" / "clothes").iterdir()) == ["Bag", "Sandal", "Trouser"]
    assert "time_column" not in params["data"]  # an absent optional setting is not written
    assert "next: make run WS=" in capsys.readouterr().out

"""The target domain through the stages: prepare's checks, the adapt stage, evaluate's domains, export, gate."""

import copy
import subprocess

import pandas as pd
import pytest

from graft import evaluate, select, train
from graft.core import config
from graft.core.artifacts import read_json
from graft.core.errors import GraftError
from graft.core.formats import read_file
from graft.data import prepare
from graft.data.tables import read_splits, read_target
from graft.promote import gate
from graft.serve import export
from tests.shrink import said, write_params


def with_target(params: dict, folder, raw="pool.csv", test="labeled.csv", **train) -> config.Config:
    p = copy.deepcopy(params)
    p["data"]["target"] = {"raw": str(folder / raw), "test": str(folder / test) if test else None}
    p["train"].update(train)
    return config.from_dict(p)


def test_prepare_writes_the_pool_and_the_test_and_records_them(shrunk, target_files, tmp_path):
    pool = pd.read_csv(target_files / "pool.csv")
    # three pool rows are also target-test rows: they leave the pool (they judge, they are not adapted to)
    pd.concat([pool, pd.read_csv(target_files / "labeled.csv")[["Content"]].head(3)]).to_csv(
        tmp_path / "pool.csv", index=False)
    (tmp_path / "labeled.csv").write_text((target_files / "labeled.csv").read_text())
    cfg = with_target(shrunk[0], tmp_path)
    prepare.run(cfg.data.raw, tmp_path / "splits", cfg)
    target, manifest = read_target(tmp_path / "splits"), read_json(tmp_path / "splits" / "manifest.json")
    assert set(target) == {"target", "target_test"} and "label" not in target["target"]
    assert manifest["target"]["removed_from_pool"] == 3 and manifest["target"]["rows"] == {"target": 150,
                                                                                           "target_test": 100}
    assert manifest["target"]["raw_md5"] and manifest["target"]["test_md5"]
    assert set(read_splits(tmp_path / "splits")) == {"train", "validation", "test"}  # the source splits as before
    plain = config.from_dict(shrunk[0])
    prepare.run(plain.data.raw, tmp_path / "none", plain)
    assert read_target(tmp_path / "none") == {} and read_json(tmp_path / "none" / "manifest.json")["target"] is None


def bad_inputs(folder, raw_file):
    """(file name, content writer, what the error names) of each kind of bad target input."""
    df = read_file(raw_file)
    train_rows = df[df["Time"].astype(str) < "2016-08-31"][["Content", "Author"]]
    return {
        "empty pool": ("pool.csv", lambda p: p.write_text("Content\n"), "holds no inputs"),
        "wrong format": ("pool.docx", lambda p: p.write_bytes(b"PK\x03\x04 not a table"), "pool.docx"),
        "no text column": ("pool.csv", lambda p: p.write_text("image\nabc\n"), "has no 'text' column"),
        "unknown labels": ("labeled.csv", lambda p: p.write_text("Content,Author\nhello there,BernieSanders\n"),
                           "unknown labels ['BernieSanders']"),
        "leak into training": ("labeled.csv", lambda p: train_rows.head(400).to_csv(p, index=False),
                               "also training or validation rows"),
    }


@pytest.mark.parametrize("case", ["empty pool", "wrong format", "no text column", "unknown labels",
                                  "leak into training"])
def test_bad_target_input_is_one_line_exit_1_and_nothing_written(case, shrunk, target_files, raw_file, tmp_path):
    for name in ("pool.csv", "labeled.csv"):
        (tmp_path / name).write_text((target_files / name).read_text())
    name, write, says = bad_inputs(tmp_path, raw_file)[case]
    write(tmp_path / name)
    p = copy.deepcopy(shrunk[0])
    p["data"]["target"] = {"raw": str(tmp_path / ("pool.docx" if name == "pool.docx" else "pool.csv")),
                           "test": str(tmp_path / "labeled.csv")}
    params = write_params(tmp_path, p)
    out = tmp_path / "splits"
    done = subprocess.run(["graft", "prepare", "--raw", p["data"]["raw"], "--out", str(out), "--params",
                           str(params)], capture_output=True, text=True)
    assert done.returncode == 1 and says in done.stderr, done.stderr
    assert len(said(done.stderr)) == 1 and str(tmp_path) in done.stderr
    assert not out.exists()


def test_a_different_image_size_is_refused(image_shrunk, tmp_path):
    import io

    from PIL import Image

    table = pd.read_parquet(image_shrunk[1].data.raw)
    buf = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buf, format="PNG")
    pd.DataFrame({"image": [buf.getvalue()] * 3}).to_parquet(tmp_path / "big.parquet")
    table.head(5)[["image"]].to_parquet(tmp_path / "ok.parquet")
    p = copy.deepcopy(image_shrunk[0])
    p["data"]["target"] = {"raw": str(tmp_path / "big.parquet")}
    cfg = config.from_dict(p)
    with pytest.raises(GraftError, match=r"sides outside the training images' 28\.\.28 px"):
        prepare.run(cfg.data.raw, tmp_path / "splits", cfg)
    p["data"]["target"] = {"raw": str(tmp_path / "ok.parquet")}
    cfg = config.from_dict(p)
    prepare.run(cfg.data.raw, tmp_path / "splits", cfg)
    assert len(read_target(tmp_path / "splits")["target"]) <= 5


def test_the_adaptation_path_end_to_end(shrunk, target_files, tmp_path):
    """prepare -> select -> train, baseline, adapt -> evaluate (domains) -> export (the chosen one) -> gate."""
    cfg = with_target(shrunk[0], target_files, adapt="self_training", adaptation={"pseudo_threshold": 0.5})
    s = tmp_path
    prepare.run(cfg.data.raw, s / "splits", cfg)
    select.run(s / "splits", cfg, s / "select.json")
    train.run(s / "splits", s / "select.json", s / "ft", cfg, "pretrained", s / "train.json")
    train.run(s / "splits", s / "select.json", s / "sc", cfg, "scratch", s / "baseline.json")
    adapted = train.adapt_run(s / "splits", s / "select.json", s / "ad", cfg, s / "adapted.json")
    assert adapted["method"] == "self_training" and adapted["run"]["adaptation"]["rounds"]
    assert read_json(s / "train.json")["adaptation"] == {"method": "none"}  # train is the source-only model
    ev = evaluate.run(s / "splits", s / "ft", s / "sc", cfg, s / "evaluate.json", adapted=s / "ad")
    dom = ev["domains"]
    assert set(dom["source"]) == set(dom["target"]) == {"source_only", "adapted", "scratch", "classical"}
    assert dom["rows"] == {"source": 60, "target": 100}
    assert {"adapted_vs_source_only", "adapted_vs_classical", "source_only_vs_scratch"} <= set(
        dom["comparisons"]["target"])
    c = dom["comparisons"]["target"]["adapted_vs_source_only"]["macro_f1"]
    assert dom["chosen"] == ("adapted" if c["ci_low"] >= 0 else "source_only")
    model, why = export.pick(s / "ft", s / "ad", s / "evaluate.json")
    assert model == (s / "ad" if dom["chosen"] == "adapted" else s / "ft") and dom["why"] in why
    verdict = gate.decide(ev, export.run(model, s / "splits", cfg, s / "onnx", s / "export.json"), cfg.gate)
    assert verdict["chosen"] == dom["chosen"] and verdict["notes"] == [dom["why"]]
    assert "adaptation_benefit" in [c["name"] for c in verdict["checks"]]
    none = train.adapt_run(s / "splits", s / "select.json", s / "none", config.from_dict(shrunk[0]),
                           s / "none.json")
    assert none["method"] == "none" and not (s / "none" / "graft_model.json").exists()

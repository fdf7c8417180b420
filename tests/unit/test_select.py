import numpy as np
import pandas as pd

from graft.select import ranking as select


def test_probe_scores_separable_features_high_and_noise_at_chance():
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 100)
    signal = rng.normal(size=(200, 16)) + (y == "a")[:, None] * 3.0
    noise = rng.normal(size=(200, 16))
    assert select.probe_accuracy(signal, y, 5, 0) > 0.95
    assert 0.3 < select.probe_accuracy(noise, y, 5, 0) < 0.7


def test_probe_folds_shrink_to_the_smallest_class():
    y = np.array(["a"] * 30 + ["b"] * 3)
    x = np.vstack([np.zeros((30, 2)), np.ones((3, 2))]) + np.random.default_rng(1).normal(0, 0.01, (33, 2))
    assert select.probe_accuracy(x, y, 10, 0) == 1.0  # 3 folds, not 10: no fold without a "b"


def test_sample_is_stratified_and_bounded():
    train = pd.DataFrame({"text": [str(i) for i in range(400)], "label": ["a"] * 300 + ["b"] * 100})
    s = select.sample(train, 100, 42)
    assert len(s) == 100 and (s["label"] == "b").sum() == 25
    assert select.sample(train, 1000, 42) is train


def entry(name, params, b1=1.0, b32=1.0, eligible=True, reason="within budgets"):
    return {"name": name, "logme": -0.3, "probe_accuracy": 0.9, "params": params,
            "latency_ms": {"batch_1": b1, "batch_32": b32}, "eligible": eligible, "reason": reason}


def test_markdown_marks_the_selected_backbone_and_the_excluded_ones():
    sel = {"selected": "x", "rank_by": "logme", "seconds": 1.5, "ranking": [
        entry("x", 10), entry("y", 20, eligible=False, reason="params 20 > budget 15")]}
    md = select.markdown(sel)
    assert "| 1 | x **(selected)** | -0.3000 | 0.9000 | 10 |" in md
    assert "| 2 | y |" in md and "no: params 20 > budget 15" in md and "ranked by logme" in md


def test_budget_reasons_name_each_exceeded_budget():
    from graft.core.config import SelectConfig

    cfg = SelectConfig(candidates=[{"name": "x", "source": "pkg:x"}], max_params=100, max_latency_ms_batch1=5.0,
                       max_latency_ms_batch32=1.0)
    assert select.budget_reasons(entry("x", 50, b1=4.0, b32=0.5), cfg) == []
    assert select.budget_reasons(entry("x", 150, b1=6.0, b32=0.5), cfg) == [
        "params 150 > budget 100", "latency at batch 1 6 ms/example > budget 5.0 ms/example"]

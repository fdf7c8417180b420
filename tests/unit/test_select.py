import numpy as np
import pandas as pd

from graft import select


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


def test_markdown_marks_the_selected_backbone():
    sel = {"selected": "x", "ranking": [
        {"name": "x", "probe_accuracy": 0.9, "params": 10, "seconds": 1.0},
        {"name": "y", "probe_accuracy": 0.8, "params": 20, "seconds": 2.0}]}
    md = select.markdown(sel)
    assert "| 1 | x **(selected)** | 0.9000 |" in md and "| 2 | y |" in md

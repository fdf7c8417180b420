import math

import pandas as pd
import pytest

from graft.core.config import DriftConfig
from graft.data import drift
from graft.modalities.text import TEXT
from graft.modalities.text.data import words


def test_js_divergence_bounds_and_known_value():
    assert drift.js_divergence({"a": 5, "b": 5}, {"a": 50, "b": 50}) == 0
    assert drift.js_divergence({"a": 1}, {"b": 1}) == pytest.approx(1.0)
    # JS(0.5/0.5 || 0.9/0.1), computed by hand in base 2
    m = [0.7, 0.3]
    kl = lambda p: sum(x * math.log2(x / y) for x, y in zip(p, m))  # noqa: E731
    assert drift.js_divergence({"a": 1, "b": 1}, {"a": 9, "b": 1}) == pytest.approx((kl([0.5, 0.5]) +
                                                                                      kl([0.9, 0.1])) / 2)


def test_psi_and_oov():
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0, abs=1e-9)
    assert drift.psi([90, 10], [10, 90]) > 1
    assert drift.oov_rate({"old": 3, "new": 1}, {"old": 1}) == 0.25


def test_words_skip_links_handles_and_numbers():
    assert words("Vote @Hillary NOW: https://t.co/Xy12 in 2016!") == ["vote", "now", "in"]


def test_first_version_has_no_reference():
    (row,) = drift.compare({"id": "x"}, None, DriftConfig())
    assert row["status"] == "ok" and "first validated version" in row["why"]


def test_compare_grades_warn_and_fail():
    table = lambda mix: {"t": pd.DataFrame({"text": ["same words here"] * sum(mix),  # noqa: E731
                                            "label": ["a"] * mix[0] + ["b"] * mix[1]})}
    ref = drift.profile(table((50, 50)), TEXT)
    rows = {r["name"]: r for r in drift.compare(drift.profile(table((70, 30)), TEXT), ref, DriftConfig())}
    assert rows["label_js"]["status"] == "warn" and rows["oov_rate"]["status"] == "ok"
    rows = {r["name"]: r for r in drift.compare(drift.profile(table((95, 5)), TEXT), ref, DriftConfig())}
    js = rows["label_js"]
    assert js["status"] == "fail" and f"label_js={js['value']:.4f}" in js["why"]


def test_store_returns_the_newest_other_version(tmp_path):
    a = {"id": "a", "created": 1.0}
    b = {"id": "b", "created": 2.0}
    assert drift.reference(tmp_path, "a") is None
    drift.save(a, tmp_path)
    drift.save(b, tmp_path)
    assert drift.reference(tmp_path, "c")["id"] == "b"
    assert drift.reference(tmp_path, "b")["id"] == "a"

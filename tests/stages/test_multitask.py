"""The multi-task demo end to end on a tiny slice of 20 Newsgroups (plumbing, not accuracy)."""

import json

from graft.core import config
from graft.experiments import multitask


def test_demo_reports_both_tasks_three_ways(shrunk, tmp_path):
    params, _ = shrunk
    p = json.loads(json.dumps(params))
    p["multitask"] = {"backbone": "minilm-l1", "train_size": 60, "validation_size": 30, "test_size": 50,
                      "max_length": 32, "epochs": 1}
    result = multitask.run(config.from_dict(p), tmp_path / "mt.json")
    assert result["classes"] == {"newsgroup": 20, "topic": 7}
    assert result["rows"] == {"train": 60, "validation": 30, "test": 50}
    for task in ("newsgroup", "topic"):
        assert set(result["tasks"][task]) == {"multitask", "single_task", "classical"}
        assert all(0 <= s["accuracy"] <= 1 for s in result["tasks"][task].values())
    assert set(result["seconds"]) == {"multitask", "single_newsgroup", "single_topic"}
    assert json.loads((tmp_path / "mt.json").read_text()) == result

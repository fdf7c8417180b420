"""The `explain` component's function: the chosen model explained, the deletion test logged, a page written."""

from pathlib import Path

from graft.core import outputs


def test_explains_the_chosen_model_and_logs_its_faithfulness(chain):
    out = chain.explain
    written = outputs.read(out.explanation.path, "explain")
    chosen = outputs.read(chain.evaluate.evaluation.path, "evaluate")["domains"]["chosen"]
    assert written["model"] == chosen
    assert set(written["faithfulness"]) == {"model", "scratch"}
    f = written["faithfulness"]["model"]
    assert out.explanation.metadata["model_deletion_top_drop"] == f["top_drop"]
    assert written["rows"]["explained"] == f["items"] > 0
    page = Path(out.page.path).read_text()
    assert "Faithfulness" in page and "http://" not in page and "https://cdn" not in page

"""The `select` component's function: every candidate ranked, the selected name returned for downstream tasks."""

from pathlib import Path

from graft.core import outputs


def test_returns_and_tags_the_selected_backbone(chain):
    out = chain.select
    names = [c["name"] for c in chain.config["select"]["candidates"]]
    assert out.value in names and out.selection.metadata == {"selected": out.value}
    written = outputs.read(out.selection.path, "select")
    assert written["selected"] == out.value
    assert sorted(r["name"] for r in written["ranking"]) == sorted(names)
    assert out.value in Path(out.ranking.path).read_text()

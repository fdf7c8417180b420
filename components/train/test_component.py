"""The `train` component's function: the selected backbone fine-tuned, its metrics logged for the KFP UI."""

from pathlib import Path

from graft.core import outputs


def test_fine_tunes_the_selected_backbone(chain):
    out = chain.train
    assert out.model.metadata == {"backbone": chain.select.value, "init_from": "pretrained"}
    written = outputs.read(out.metrics.path, "train")
    assert set(out.metrics.metadata) == {"val_accuracy", "val_macro_f1", "seconds"}
    assert out.metrics.metadata["val_macro_f1"] == written["val_macro_f1"]
    assert 0.0 <= written["val_macro_f1"] <= 1.0
    assert any(Path(out.model.path).iterdir())

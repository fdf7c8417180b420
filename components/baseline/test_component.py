"""The `baseline` component's function: the selected architecture from random weights, same budget as `train`."""

from graft.core import outputs


def test_trains_the_same_architecture_from_scratch(chain):
    out = chain.baseline
    assert out.model.metadata == {"backbone": chain.train.model.metadata["backbone"], "init_from": "scratch"}
    written = outputs.read(out.metrics.path, "baseline")
    assert out.metrics.metadata["val_macro_f1"] == written["val_macro_f1"]
    assert written["init_from"] == "scratch" and written["backbone"] == chain.train.model.metadata["backbone"]

"""The `adapt` component's function: the adapted model (the chain's config adapts by self-training)."""

from pathlib import Path

from graft.core import outputs


def test_adapts_to_the_target_inputs(chain):
    out = chain.adapt
    written = outputs.read(out.metrics.path, "adapt")
    assert out.model.metadata == {"method": "self_training"} == {"method": written["method"]}
    assert out.metrics.metadata["val_macro_f1"] == written["run"]["val_macro_f1"]
    assert written["run"]["adaptation"]["target_inputs"] == 150
    assert (Path(out.model.path) / "model.safetensors").is_file()

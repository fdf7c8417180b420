"""The `export` component's function: an ONNX package (fp32 + int8) and its parity with PyTorch."""

from pathlib import Path

from graft.core import outputs


def test_exports_onnx_and_logs_parity(chain):
    out = chain.export
    package = Path(out.package.path)
    assert (package / "model.onnx").is_file() and out.package.metadata["format"] == "onnx"
    chosen = outputs.read(chain.evaluate.evaluation.path, "evaluate")["domains"]["chosen"]
    assert out.package.metadata["chosen"] == chosen  # the model evaluate's domains chose
    written = outputs.read(out.parity.path, "export")
    assert out.package.metadata["opset"] == written["opset"]
    assert out.parity.metadata["fp32_agreement"] == written["fp32"]["agreement"] >= 0.99
    assert out.parity.metadata["int8_size_mb"] < out.parity.metadata["fp32_size_mb"]

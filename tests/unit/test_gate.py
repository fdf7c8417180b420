from graft import gate
from graft.config import GateConfig

POLICY = GateConfig(min_macro_f1=0.8, min_margin_over_scratch=0.02, min_onnx_agreement=0.999)


def metrics(ft: float, sc: float) -> dict:
    return {"finetune": {"macro_f1": ft, "accuracy": ft}, "scratch": {"macro_f1": sc, "accuracy": sc}}


def test_passes_when_every_check_holds():
    verdict = gate.decide(metrics(0.92, 0.81), {"agreement": 1.0}, POLICY)
    assert verdict["passed"] is True
    assert verdict["reasons"] == []
    assert [c["name"] for c in verdict["checks"]] == ["min_macro_f1", "beats_scratch", "onnx_agreement"]


def test_each_failed_check_gives_its_reason():
    verdict = gate.decide(metrics(0.70, 0.75), {"agreement": 0.99}, POLICY)
    assert verdict["passed"] is False
    names = [r.split(":")[0] for r in verdict["reasons"]]
    assert names == ["min_macro_f1", "beats_scratch", "onnx_agreement"]
    assert "negative transfer" in verdict["reasons"][1]


def test_margin_is_inclusive_and_small_gain_fails():
    assert gate.decide(metrics(0.85, 0.83), {"agreement": 1.0}, POLICY)["passed"] is True
    small = gate.decide(metrics(0.85, 0.84), {"agreement": 1.0}, POLICY)
    assert small["passed"] is False and small["reasons"][0].startswith("beats_scratch")
    assert "negative transfer" not in small["reasons"][0]


def test_markdown_lists_every_check():
    table = gate.markdown(gate.decide(metrics(0.70, 0.75), {"agreement": 1.0}, POLICY))
    assert table.startswith("**FAILED**")
    assert table.count("\n| ") == 4  # header + three checks

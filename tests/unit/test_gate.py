from graft import gate
from graft.config import GateConfig

POLICY = GateConfig(min_macro_f1=0.8, min_margin_over_scratch=0.02, min_onnx_agreement=0.999)
CHECKS = ["min_macro_f1", "beats_scratch", "onnx_max_abs_diff", "onnx_agreement", "onnx_accuracy_delta_pt",
          "int8_accuracy_drop_pt"]


def metrics(ft: float, sc: float) -> dict:
    return {"finetune": {"macro_f1": ft, "accuracy": ft}, "scratch": {"macro_f1": sc, "accuracy": sc}}


def parity(agreement=1.0, diff=1e-6, fp32=0.90, torch=0.90, int8=0.899) -> dict:
    return {"torch": {"accuracy": torch}, "fp32": {"max_abs_diff": diff, "agreement": agreement, "accuracy": fp32},
            "int8": {"max_abs_diff": 0.1, "agreement": 0.99, "accuracy": int8}}


def test_passes_when_every_check_holds():
    verdict = gate.decide(metrics(0.92, 0.81), parity(), POLICY)
    assert verdict["passed"] is True
    assert verdict["reasons"] == []
    assert [c["name"] for c in verdict["checks"]] == CHECKS


def test_each_failed_check_gives_its_reason():
    verdict = gate.decide(metrics(0.70, 0.75), parity(agreement=0.99, diff=0.3, fp32=0.88, int8=0.87), POLICY)
    assert verdict["passed"] is False
    names = [r.split(":")[0] for r in verdict["reasons"]]
    assert names == CHECKS
    assert "negative transfer" in verdict["reasons"][1] and "ONNX parity broken" in verdict["reasons"][2]


def test_margin_is_inclusive_and_small_gain_fails():
    assert gate.decide(metrics(0.85, 0.83), parity(), POLICY)["passed"] is True
    small = gate.decide(metrics(0.85, 0.84), parity(), POLICY)
    assert small["passed"] is False and small["reasons"][0].startswith("beats_scratch")
    assert "negative transfer" not in small["reasons"][0]


def test_int8_may_drop_half_a_point_and_may_gain():
    assert gate.decide(metrics(0.92, 0.81), parity(int8=0.895), POLICY)["passed"] is True  # 0.5 pt: inclusive
    assert gate.decide(metrics(0.92, 0.81), parity(int8=0.93), POLICY)["passed"] is True
    drop = gate.decide(metrics(0.92, 0.81), parity(int8=0.894), POLICY)
    assert [r.split(":")[0] for r in drop["reasons"]] == ["int8_accuracy_drop_pt"]


def test_markdown_lists_every_check():
    table = gate.markdown(gate.decide(metrics(0.70, 0.75), parity(), POLICY))
    assert table.startswith("**FAILED**")
    assert table.count("\n| ") == 1 + len(CHECKS)  # header + one row per check

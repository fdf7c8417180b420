from graft import gate
from graft.config import GateConfig

POLICY = GateConfig(min_macro_f1=0.8, min_margin_over_scratch=0.02, min_onnx_agreement=0.999, max_regression=0.01)
PARITY_CHECKS = ["onnx_max_abs_diff", "onnx_agreement", "onnx_accuracy_delta_pt", "int8_accuracy_drop_pt"]


def ci(diff: float, half: float = 0.02) -> dict:
    return {"diff": diff, "ci_low": round(diff - half, 6), "ci_high": round(diff + half, 6)}


def metrics(ft: float, sc: float, champion: float | None = None, half: float = 0.02) -> dict:
    ev = {"finetune": {"macro_f1": ft, "accuracy": ft}, "scratch": {"macro_f1": sc, "accuracy": sc},
          "comparisons": {"finetune_vs_scratch": {"macro_f1": ci(ft - sc, half)}},
          "champion": {"version": None, "first_run": True}}
    if champion is not None:
        ev["champion"] = {"version": 3, "first_run": False, "comparable": True}
        ev["comparisons"]["finetune_vs_champion"] = {"macro_f1": ci(ft - champion, half)}
    return ev


def parity(agreement=1.0, diff=1e-6, fp32=0.90, torch=0.90, int8=0.899) -> dict:
    return {"torch": {"accuracy": torch}, "fp32": {"max_abs_diff": diff, "agreement": agreement, "accuracy": fp32},
            "int8": {"max_abs_diff": 0.1, "agreement": 0.99, "accuracy": int8}}


def failed(verdict: dict) -> list[str]:
    return [r.split(":")[0] for r in verdict["reasons"]]


def test_clear_pass_with_a_champion():
    verdict = gate.decide(metrics(0.92, 0.81, champion=0.90), parity(), POLICY)
    assert verdict["passed"] is True and verdict["reasons"] == []
    assert [c["name"] for c in verdict["checks"]] == ["min_macro_f1", "transfer_benefit", "non_regression",
                                                      *PARITY_CHECKS]
    regress = next(c for c in verdict["checks"] if c["name"] == "non_regression")
    assert (regress["value"], regress["ci_low"], regress["ci_high"], regress["threshold"]) == (0.02, 0.0, 0.04, -0.01)


def test_clear_fail_names_every_failed_check():
    verdict = gate.decide(metrics(0.70, 0.75, champion=0.80), parity(agreement=0.99, diff=0.3, fp32=0.88, int8=0.87),
                          POLICY)
    assert verdict["passed"] is False
    assert failed(verdict) == ["min_macro_f1", "transfer_benefit", "non_regression", *PARITY_CHECKS]
    assert "NEGATIVE TRANSFER" in verdict["reasons"][1] and "REGRESSION" in verdict["reasons"][2]
    assert "ONNX parity broken" in verdict["reasons"][3]


def test_a_tie_with_the_champion_inside_the_interval_passes_and_a_wide_interval_does_not():
    assert gate.decide(metrics(0.90, 0.80, champion=0.90, half=0.01), parity(), POLICY)["passed"] is True
    wide = gate.decide(metrics(0.90, 0.80, champion=0.90, half=0.03), parity(), POLICY)
    assert failed(wide) == ["non_regression"]  # the same point estimate, but a 3-point drop is not ruled out


def test_transfer_benefit_is_judged_on_the_lower_bound():
    # +0.03 macro-F1 over scratch looks fine, but the interval reaches down to +0.01, below the 0.02 margin
    small = gate.decide(metrics(0.85, 0.82, half=0.02), parity(), POLICY)
    assert failed(small) == ["transfer_benefit"] and "NEGATIVE" not in small["reasons"][0]
    assert gate.decide(metrics(0.85, 0.80, half=0.02), parity(), POLICY)["passed"] is True


def test_the_first_run_policy_is_explicit():
    promote = gate.decide(metrics(0.92, 0.81), parity(), POLICY)
    assert promote["passed"] is True
    (first,) = [c for c in promote["checks"] if c["name"] == "first_run"]
    assert first["passed"] and "no champion yet" in first["why"]
    refuse = gate.decide(metrics(0.92, 0.81), parity(), POLICY.model_copy(update={"first_run": "refuse"}))
    assert failed(refuse) == ["first_run"] and "graft promote" in refuse["reasons"][0]


def test_int8_may_drop_half_a_point_and_may_gain():
    assert gate.decide(metrics(0.92, 0.81), parity(int8=0.895), POLICY)["passed"] is True  # 0.5 pt: inclusive
    assert gate.decide(metrics(0.92, 0.81), parity(int8=0.93), POLICY)["passed"] is True
    assert failed(gate.decide(metrics(0.92, 0.81), parity(int8=0.894), POLICY)) == ["int8_accuracy_drop_pt"]


def test_markdown_lists_every_check_with_its_interval():
    table = gate.markdown(gate.decide(metrics(0.70, 0.75, champion=0.7), parity(), POLICY))
    assert table.startswith("**FAILED**")
    assert table.count("\n| ") == 1 + 7  # header + one row per check
    assert "| transfer_benefit | -0.05 | [-0.0700, -0.0300] |" in table

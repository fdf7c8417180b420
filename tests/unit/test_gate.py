from graft.core import config
from graft.core.config import GateConfig
from graft.promote import gate

POLICY = GateConfig(min_macro_f1=0.8, min_transfer_margin=0.02, min_onnx_agreement=0.999, max_regression=0.01)
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


def test_size_and_latency_budgets_apply_to_the_served_model():
    measured = {**parity(), "size_mb": {"fp32": 66.0, "int8": 17.0},
                "latency_ms": {"onnx_fp32": {"batch_1_p95": 7.2}, "onnx_int8": {"batch_1_p95": 5.9}}}
    budgets = POLICY.model_copy(update={"max_model_mb": 50.0, "max_latency_ms_p95": 7.0})
    verdict = gate.decide(metrics(0.92, 0.81), measured, budgets)
    assert failed(verdict) == ["model_size_mb", "latency_ms_p95"]
    size = next(c for c in verdict["checks"] if c["name"] == "model_size_mb")
    assert size["value"] == 66.0 and size["threshold"] == 50.0 and "fp32 ONNX model 66.00 MB" in size["why"]
    served_int8 = gate.decide(metrics(0.92, 0.81), measured, budgets.model_copy(update={"serve": "int8"}))
    assert served_int8["passed"] is True
    unmeasured = gate.decide(metrics(0.92, 0.81), {**measured, "latency_ms": None}, budgets.model_copy(
        update={"serve": "int8"}))
    assert failed(unmeasured) == ["latency_ms_p95"] and "not measured" in unmeasured["reasons"][0]
    assert [c["name"] for c in gate.decide(metrics(0.92, 0.81), measured, POLICY)["checks"]][-1] == \
        "int8_accuracy_drop_pt"  # no budget set: no budget check


def test_decisions_from_crafted_predictions_through_the_real_statistics():
    """Predictions -> scores and paired-bootstrap intervals (graft.stats) -> the gate, end to end."""
    import numpy as np

    from graft.metrics.scores import scores
    from graft.metrics.stats import compare

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 1000)

    def predictions(accuracy: float, base: np.ndarray = y) -> np.ndarray:
        wrong = rng.random(len(y)) > accuracy
        return np.where(wrong, 1 - base, base)

    def evaluation(ft, sc, champion=None) -> dict:
        ev = {"finetune": scores(y, ft, ["a", "b"]), "scratch": scores(y, sc, ["a", "b"]),
              "comparisons": {"finetune_vs_scratch": compare(y, ft, sc, 2, 1000, 42)},
              "champion": {"version": None, "first_run": True}}
        if champion is not None:
            ev["champion"] = {"version": 1, "first_run": False, "comparable": True}
            ev["comparisons"]["finetune_vs_champion"] = compare(y, ft, champion, 2, 1000, 42)
        return ev

    good, weak = predictions(0.92), predictions(0.75)
    first = gate.decide(evaluation(good, weak), parity(), POLICY)  # the first run: promoted by policy
    assert first["passed"] and [c["name"] for c in first["checks"]][2] == "first_run"
    tie = predictions(0.995, base=good)  # the champion differs from the candidate on ~5 rows in 1000
    assert gate.decide(evaluation(good, weak, champion=tie), parity(), POLICY)["passed"]
    worse = gate.decide(evaluation(weak, good, champion=good), parity(), POLICY)  # clear fail on every count
    assert failed(worse) == ["min_macro_f1", "transfer_benefit", "non_regression"]
    assert "NEGATIVE TRANSFER" in worse["reasons"][1] and "REGRESSION" in worse["reasons"][2]


def with_classical(ev: dict, cl: float, half: float = 0.02) -> dict:
    ft = ev["finetune"]["macro_f1"]
    return {**ev, "classical": {"macro_f1": cl, "accuracy": cl, "method": "TF-IDF + logistic regression"},
            "comparisons": {**ev["comparisons"], "finetune_vs_classical": {"macro_f1": ci(ft - cl, half)}}}


def test_transfer_is_judged_against_the_best_model_without_transfer():
    # scratch is weak (0.70), so fine-tuned +0.12 over it; but TF-IDF reaches 0.84: only +-0.02 there
    ev = with_classical(metrics(0.82, 0.70), 0.84)
    verdict = gate.decide(ev, parity(), POLICY)
    (check,) = [c for c in verdict["checks"] if c["name"] == "transfer_benefit"]
    assert failed(verdict) == ["transfer_benefit"]  # a model that loses to TF-IDF is no longer promoted
    assert check["baseline"] == "classical" and check["value"] == -0.02 and check["ci_low"] == -0.04
    assert "fine-tuned minus classical" in check["why"] and "scratch 0.7000" in check["why"]
    assert "negative transfer: the estimate is below zero" in check["why"]
    clearly_worse = gate.decide(with_classical(metrics(0.82, 0.70), 0.90), parity(), POLICY)
    assert "NEGATIVE TRANSFER: the fine-tuned model is worse than the classical baseline (TF-IDF + logistic " \
           "regression)" in clearly_worse["reasons"][0]


def test_a_weak_classical_baseline_leaves_scratch_as_the_one_to_beat():
    verdict = gate.decide(with_classical(metrics(0.92, 0.81), 0.60), parity(), POLICY)
    (check,) = [c for c in verdict["checks"] if c["name"] == "transfer_benefit"]
    assert verdict["passed"] and check["baseline"] == "scratch" and check["value"] == 0.11


def test_the_old_margin_name_is_refused_with_the_new_one():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_margin_over_scratch is now min_transfer_margin"):
        GateConfig(min_margin_over_scratch=0.02)


def domains_metrics(adapted: float, source_only: float, half: float = 0.02, target: bool = True,
                    adapted_source: float = 0.90, method: str = "dann") -> dict:
    """An evaluation with a `domains` section: source-only and adapted on the source and (optionally) target test."""
    ev = metrics(0.90, 0.70)
    ev["classical"] = {"macro_f1": 0.75, "accuracy": 0.75, "method": "TF-IDF"}
    ev["comparisons"]["finetune_vs_classical"] = {"macro_f1": ci(0.15, half)}

    def domain(so: float, ad: float) -> tuple[dict, dict]:
        scored = {"source_only": {"macro_f1": so}, "adapted": {"macro_f1": ad}, "scratch": {"macro_f1": 0.5},
                  "classical": {"macro_f1": 0.6, "method": "TF-IDF"}}
        cmp = {"adapted_vs_source_only": {"macro_f1": ci(round(ad - so, 6), half)}}
        for m, v in (("source_only", so), ("adapted", ad)):
            cmp.update({f"{m}_vs_{b}": {"macro_f1": ci(round(v - scored[b]["macro_f1"], 6), half)}
                        for b in ("scratch", "classical")})
        return scored, cmp

    section = {"method": method, "comparisons": {}}
    section["source"], section["comparisons"]["source"] = domain(0.90, adapted_source)
    if target:
        section["target"], section["comparisons"]["target"] = domain(source_only, adapted)
    ev["domains"] = {**section, **gate.choose(section, POLICY)}
    return ev


def test_the_adapted_model_goes_on_only_when_its_lower_bound_beats_source_only():
    won = domains_metrics(0.85, 0.78)
    assert won["domains"]["chosen"] == "adapted" and won["domains"]["proven"]
    verdict = gate.decide(won, parity(), POLICY)
    assert verdict["passed"] and verdict["chosen"] == "adapted" and "adapted model goes on" in verdict["notes"][0]
    (benefit,) = [c for c in verdict["checks"] if c["name"] == "adaptation_benefit"]
    assert benefit["passed"] and benefit["ci_low"] == 0.05
    lost = domains_metrics(0.79, 0.78)  # +0.01, but the interval reaches -0.01: not proven
    assert lost["domains"]["chosen"] == "source_only"
    verdict = gate.decide(lost, parity(), POLICY)
    # the source-only model is promoted, the verdict says why; adaptation_benefit decides but never refuses
    assert verdict["passed"] and verdict["chosen"] == "source_only"
    assert "did not prove a benefit" in verdict["notes"][0] and verdict["reasons"] == []
    assert [c["blocking"] for c in verdict["checks"] if c["name"] == "adaptation_benefit"] == [False]


def test_the_chosen_adapted_model_is_the_one_the_main_checks_judge():
    ev = domains_metrics(0.85, 0.78, adapted_source=0.70)  # it wins on the target, but loses 0.20 on the source
    verdict = gate.decide(ev, parity(), POLICY)
    (floor,) = [c for c in verdict["checks"] if c["name"] == "min_macro_f1"]
    assert floor["value"] == 0.70 and not floor["passed"] and "adapted macro-F1" in floor["why"]
    floors = POLICY.model_copy(update={"domains": {"source": config.DomainFloor(max_regression=0.05)}})
    ev = domains_metrics(0.85, 0.78, adapted_source=0.84)
    verdict = gate.decide(ev, parity(), floors)
    assert failed(verdict) == ["source_regression"] and "-0.0600" in verdict["reasons"][0]


def test_unproven_adaptation_follows_the_policy_in_plain_words():
    ev = domains_metrics(0.85, 0.78, target=False)
    assert ev["domains"]["chosen"] == "source_only" and not ev["domains"]["proven"]
    keep = gate.decide(ev, parity(), POLICY)
    assert keep["passed"] and "cannot be proven without a labeled target test" in keep["notes"][0]
    refuse = POLICY.model_copy(update={"unproven_adaptation": "refuse"})
    section = {k: v for k, v in ev["domains"].items() if k in ("method", "source", "comparisons")}
    ev["domains"] = {**section, **gate.choose(section, refuse)}
    verdict = gate.decide(ev, parity(), refuse)
    assert failed(verdict) == ["adaptation_proven"] and "the run is refused" in verdict["reasons"][0]


def test_a_domain_floor_without_that_domain_refuses():
    policy = config.GateConfig(domains={"target": {"min_macro_f1": 0.7}})
    verdict = gate.decide(domains_metrics(0.85, 0.78, target=False), parity(), policy)
    assert "target_domain" in failed(verdict) and "no labeled target test" in " ".join(verdict["reasons"])
    ok = gate.decide(domains_metrics(0.85, 0.78), parity(), policy)
    assert [c["passed"] for c in ok["checks"] if c["name"] == "target_min_macro_f1"] == [True]


def test_the_explanation_check_survives_an_unbounded_ratio_interval():
    from graft.core.config import GateConfig
    from graft.promote.card import verdict_markdown
    from graft.promote.gate import explanation_checks

    faith = {"fraction": 0.2, "top_drop": 0.3, "random_drop": 0.0, "ratio": None, "ratio_ci": [3.0, None],
             "difference": {"diff": 0.3, "ci_low": 0.2, "ci_high": 0.4}, "completeness": {"share": 1.0, "bound": 0.05}}
    for floor, passed in ((None, True), (2.0, True), (4.0, False)):
        [check] = explanation_checks({"faithfulness": {"model": faith}}, GateConfig(min_explanation_faithfulness=floor))
        assert check["passed"] is passed and check["ci_high"] is None
        assert "explanation_faithfulness" in verdict_markdown({"passed": passed, "checks": [check]})

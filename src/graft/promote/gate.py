"""The `gate` stage: one promotion policy, read by DVC (exit code) and KFP (`dsl.If`) alike."""

from __future__ import annotations

from pathlib import Path

from graft.core import outputs
from graft.core.artifacts import write_text
from graft.core.config import Config, GateConfig
from graft.core.errors import GraftError
from graft.promote import infra, registry
from graft.promote.card import verdict_markdown as markdown


def _check(name: str, value: float, threshold, passed: bool, why: str, ci: dict | None = None) -> dict:
    return {"name": name, "value": round(value, 6), "threshold": threshold,
            "ci_low": ci["ci_low"] if ci else None, "ci_high": ci["ci_high"] if ci else None,
            "passed": bool(passed), "why": why}


def _ci(c: dict) -> str:
    return f"{c['diff']:+.4f} [95% CI {c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"


def decide(evaluation: dict, export: dict, policy: GateConfig, explanation: dict | None = None,
           infra: dict | None = None) -> dict:
    """Apply the policy to the evaluate and export metrics; return {"passed", "reasons", "checks"}.

    `infra` is infra-validation's result (`graft.promote.infra.validate`), when it ran.

    `reasons` holds one sentence per failed blocking check (empty when everything passed). With a target domain
    (evaluate's `domains`) the checks judge the model that goes on (`chosen`: source-only or adapted), and the
    domain checks (adaptation_benefit, per-domain floors, transfer on the target test) join them.
    """
    dom = evaluation.get("domains")
    judged = subject(evaluation)
    ft = judged["finetune"]
    checks = [
        _check("min_macro_f1", ft["macro_f1"], policy.min_macro_f1, ft["macro_f1"] >= policy.min_macro_f1,
               f"{_name(dom)} macro-F1 {ft['macro_f1']:.4f} vs floor {policy.min_macro_f1}"),
        transfer_check(judged, policy),
        champion_check(judged, policy),
        *(domain_checks(dom, policy) if dom else []),
        *parity_checks(export, policy),
        *budget_checks(export, policy),
        *explanation_checks(explanation, policy),
        *infra_checks(infra, policy),
    ]
    reasons = [f"{c['name']}: {c['why']}" for c in checks if not c["passed"] and c.get("blocking", True)]
    out = {"passed": not reasons, "reasons": reasons, "checks": checks}
    return {**out, "chosen": dom["chosen"], "notes": [dom["why"]]} if dom else out


def _name(dom: dict | None) -> str:
    return "adapted" if dom and dom["chosen"] == "adapted" else "fine-tuned"


def choose(section: dict, policy: GateConfig) -> dict:
    """Which transfer model goes on (`chosen`), why in plain words, and whether adaptation was `proven`.

    The adapted model goes on only when it beats source-only on the labeled target test with the lower 95% bound
    of the macro-F1 difference at min_adaptation_margin or above; otherwise source-only does, so adaptation never
    harms silently. Without a labeled target test it cannot be proven: gate.unproven_adaptation decides.
    """
    method = section["method"]
    if method == "none":
        return {"chosen": "source_only", "proven": False,
                "why": "train.adapt is none: the source-only model goes on (the target test only measures it)"}
    if "target" not in section:
        keep = policy.unproven_adaptation == "source_only"
        return {"chosen": "source_only", "proven": False,
                "why": f"{method} cannot be proven without a labeled target test (data.target.test): "
                + ("the source-only model goes on (gate.unproven_adaptation: source_only)" if keep else
                   "the run is refused (gate.unproven_adaptation: refuse)")}
    c = section["comparisons"]["target"]["adapted_vs_source_only"]["macro_f1"]
    won = c["ci_low"] >= policy.min_adaptation_margin
    return {"chosen": "adapted" if won else "source_only", "proven": won,
            "why": f"{method} minus source-only macro-F1 on the target test {_ci(c)}: "
            + ("the adapted model goes on" if won else f"the lower bound is below {policy.min_adaptation_margin}, "
               "so the source-only model goes on (adaptation did not prove a benefit)")}


def subject(evaluation: dict) -> dict:
    """The evaluation as the main checks read it, for the model that goes on.

    When the adapted model was chosen, its source-test scores and comparisons stand in for the fine-tuned model's.
    """
    dom = evaluation.get("domains")
    if not dom or dom["chosen"] != "adapted":
        return evaluation
    src, cmp = dom["source"], dom["comparisons"]["source"]
    comparisons = {f"finetune_vs_{b}": cmp[f"adapted_vs_{b}"] for b in NO_TRANSFER}
    if "adapted_vs_champion" in cmp:
        comparisons["finetune_vs_champion"] = cmp["adapted_vs_champion"]
    return {**evaluation, "finetune": src["adapted"], "scratch": src["scratch"], "classical": src["classical"],
            "comparisons": comparisons}


def domain_checks(dom: dict, policy: GateConfig) -> list[dict]:
    """The target domain's checks: adaptation_benefit, adaptation_proven, transfer on the target, the floors.

    adaptation_benefit decides and never refuses; adaptation_proven fails under the refuse policy; the judged
    model's transfer benefit is checked on the target test too; each gate.domains floor applies to its domain.
    """
    checks, who = [], dom["chosen"]
    if dom["method"] != "none" and "target" in dom:
        c = dom["comparisons"]["target"]["adapted_vs_source_only"]["macro_f1"]
        checks.append({**_check("adaptation_benefit", c["diff"], policy.min_adaptation_margin, dom["proven"],
                                dom["why"], c), "blocking": False})
    if dom["method"] != "none" and "target" not in dom and policy.unproven_adaptation == "refuse":
        checks.append(_check("adaptation_proven", 0.0, "a labeled target test", False, dom["why"]))
    if "target" in dom:
        view = {**dom["target"], "comparisons": {f"finetune_vs_{b}": dom["comparisons"]["target"][f"{who}_vs_{b}"]
                                                 for b in NO_TRANSFER}}
        checks.append({**transfer_check(view, policy), "name": "transfer_benefit_target"})
    for domain, floor in policy.domains.items():
        scored = dom.get(domain)
        if scored is None:
            checks.append(_check(f"{domain}_domain", 0.0, floor.model_dump(), False,
                                 f"gate.domains.{domain} is set but there is no labeled {domain} test"))
            continue
        if floor.min_macro_f1 is not None:
            f1 = scored[who]["macro_f1"]
            checks.append(_check(f"{domain}_min_macro_f1", f1, floor.min_macro_f1, f1 >= floor.min_macro_f1,
                                 f"{who} macro-F1 on the {domain} test {f1:.4f} vs floor {floor.min_macro_f1}"))
        if floor.max_regression is not None and who == "adapted":
            d = dom["comparisons"][domain]["adapted_vs_source_only"]["macro_f1"]
            checks.append(_check(f"{domain}_regression", d["diff"], -floor.max_regression,
                                 d["diff"] >= -floor.max_regression,
                                 f"adapted minus source-only macro-F1 on the {domain} test {_ci(d)}, may go down "
                                 f"to -{floor.max_regression}", d))
    return checks


# The models trained without the pretrained source: transfer must beat the best of them (Wang et al., CVPR 2019).
NO_TRANSFER = {"scratch": "the same network trained from scratch", "classical": "the classical baseline"}


def transfer_check(evaluation: dict, policy: GateConfig) -> dict:
    """Transfer benefit: fine-tuned minus the BEST no-transfer model (scratch or classical), on the lower bound.

    The best is the one with the higher test macro-F1 (on a tie, the one the fine-tuned model beats by less); an
    upper bound below zero is NEGATIVE TRANSFER: the pretrained backbone made the model worse than doing without it.
    """
    comparisons = evaluation["comparisons"]
    present = [b for b in NO_TRANSFER if f"finetune_vs_{b}" in comparisons]
    best = max(present, key=lambda b: (evaluation[b]["macro_f1"],
                                       -comparisons[f"finetune_vs_{b}"]["macro_f1"]["ci_low"]))
    c = comparisons[f"finetune_vs_{best}"]["macro_f1"]
    others = ", ".join(f"{b} {evaluation[b]['macro_f1']:.4f}" for b in present if b != best)
    named = NO_TRANSFER[best] + (f" ({evaluation[best]['method']})" if evaluation[best].get("method") else "")
    verdict = (f" — NEGATIVE TRANSFER: the fine-tuned model is worse than {named}" if c["ci_high"] < 0
               else " (negative transfer: the estimate is below zero)" if c["diff"] < 0 else "")
    margin = policy.min_transfer_margin
    check = _check("transfer_benefit", c["diff"], margin, c["ci_low"] >= margin,
                   f"fine-tuned minus {best} macro-F1 {_ci(c)}, lower bound must reach {margin}; "
                   f"{best} is the best model without transfer (macro-F1 {evaluation[best]['macro_f1']:.4f}"
                   + (f"; {others}" if others else "") + ")" + verdict, c)
    return {**check, "baseline": best}


def champion_check(evaluation: dict, policy: GateConfig) -> dict:
    """Non-regression against the re-scored champion, or the explicit first-run policy."""
    champ = evaluation.get("champion") or {"version": None, "first_run": True}
    if champ.get("first_run"):
        ok = policy.first_run == "promote"
        return _check("first_run", 0.0, policy.first_run, ok,
                      "no champion yet; policy first_run=" + policy.first_run
                      + ("" if ok else ": a person promotes the first model (graft promote)"))
    if not champ.get("comparable", True):
        return _check("non_regression", 0.0, -policy.max_regression, False, champ["note"])
    c = evaluation["comparisons"]["finetune_vs_champion"]["macro_f1"]
    ok = c["ci_low"] >= -policy.max_regression
    return _check("non_regression", c["diff"], -policy.max_regression, ok,
                  f"candidate minus champion v{champ['version']} macro-F1 {_ci(c)}, lower bound may go down to "
                  f"-{policy.max_regression}" + ("" if ok else " — REGRESSION"), c)


def parity_checks(export: dict, policy: GateConfig) -> list[dict]:
    """The export's proof on the test split: fp32 ONNX matches PyTorch, int8 stays close to fp32."""
    fp32, int8, ref = export["fp32"], export["int8"], export["torch"]
    # accuracies carry 4 decimals: round the point differences so 0.5 pt compares as 0.5, not 0.5000000000000004
    delta = round(100 * abs(fp32["accuracy"] - ref["accuracy"]), 6)
    drop = round(100 * (fp32["accuracy"] - int8["accuracy"]), 6)
    close = fp32["max_abs_diff"] <= policy.max_onnx_logit_diff
    return [
        _check("onnx_max_abs_diff", fp32["max_abs_diff"], policy.max_onnx_logit_diff, close,
               f"largest |logit| difference fp32 ONNX vs PyTorch {fp32['max_abs_diff']:.2e}, allowed "
               f"{policy.max_onnx_logit_diff:.0e}" + ("" if close else " (ONNX parity broken)")),
        _check("onnx_agreement", fp32["agreement"], policy.min_onnx_agreement,
               fp32["agreement"] >= policy.min_onnx_agreement,
               f"fp32 ONNX vs PyTorch label agreement {fp32['agreement']:.4f} vs required {policy.min_onnx_agreement}"),
        _check("onnx_accuracy_delta_pt", delta, policy.max_onnx_accuracy_delta_pt,
               delta <= policy.max_onnx_accuracy_delta_pt,
               f"fp32 ONNX test accuracy {fp32['accuracy']:.4f} vs PyTorch {ref['accuracy']:.4f}: {delta:.2f} pt"),
        _check("int8_accuracy_drop_pt", drop, policy.max_int8_accuracy_drop_pt,
               drop <= policy.max_int8_accuracy_drop_pt,
               f"int8 ONNX test accuracy {int8['accuracy']:.4f} vs fp32 ONNX {fp32['accuracy']:.4f}: "
               f"{drop:+.2f} pt drop"),
    ]


def budget_checks(export: dict, policy: GateConfig) -> list[dict]:
    """Size and latency budgets of the ONNX model that is served (`serve`), as measured by `export`."""
    which, checks = policy.serve, []
    if policy.max_model_mb is not None:
        size = export["size_mb"][which]
        checks.append(_check("model_size_mb", size, policy.max_model_mb, size <= policy.max_model_mb,
                             f"{which} ONNX model {size:.2f} MB, budget {policy.max_model_mb} MB"))
    if policy.max_latency_ms_p95 is not None:
        p95 = (export.get("latency_ms") or {}).get(f"onnx_{which}", {}).get("batch_1_p95")
        why = (f"{which} ONNX p95 latency at batch 1 {p95:.2f} ms on this machine, budget "
               f"{policy.max_latency_ms_p95} ms" if p95 is not None else f"{which} ONNX latency was not measured")
        checks.append(_check("latency_ms_p95", p95 if p95 is not None else float("nan"), policy.max_latency_ms_p95,
                             p95 is not None and p95 <= policy.max_latency_ms_p95, why))
    return checks


def explanation_checks(explanation: dict | None, policy: GateConfig) -> list[dict]:
    """Faithfulness of the promoted model's attributions: the deletion ratio's lower bound (gated when set)."""
    floor = policy.min_explanation_faithfulness
    if explanation is None:
        return [] if floor is None else [_check("explanation_faithfulness", float("nan"), floor, False,
                                                "gate.min_explanation_faithfulness is set but the explain stage "
                                                "did not run (give --explain metrics/explain.json)")]
    f = explanation["faithfulness"]["model"]
    low, high = f["ratio_ci"]
    ok = floor is None or (low is not None and low >= floor)
    why = (f"deleting the top {100 * f['fraction']:.0f}% attributed units drops the probability "
           f"{f['top_drop']:.4f}, a random {100 * f['fraction']:.0f}% {f['random_drop']:.4f}: ratio {f['ratio']} "
           f"[95% CI {low}, {high}]" + (" (reported, not gated: gate.min_explanation_faithfulness is null)"
                                         if floor is None else f", lower bound must reach {floor}"))
    check = _check("explanation_faithfulness", f["ratio"] if f["ratio"] is not None else float("nan"),
                   floor if floor is not None else "not gated", ok, why)
    bounded = low is not None and high is not None  # an upper bound is None when a resample's random drop is 0
    return [{**check, "ci_low": low if bounded else None, "ci_high": high if bounded else None,
             "blocking": floor is not None}]


def infra_checks(infra: dict | None, policy: GateConfig) -> list[dict]:
    """Infra-validation: the candidate served by `graft serve` answered real test rows like `graft predict`."""
    if infra is None:
        return []
    p95 = (infra.get("latency_ms") or {}).get("p95")
    return [_check("infra_validation", p95 if p95 is not None else float("nan"),
                   policy.max_latency_ms_p95 if policy.max_latency_ms_p95 is not None else "answers agree",
                   infra["passed"], infra["why"])]


def run(evaluation: str | Path, export: str | Path, package: str | Path, split_dir: str | Path, cfg: Config,
        out: str | Path, table: str | Path | None = None, register: bool = True, refusals: bool = True,
        explanation: str | Path | None = None, explanation_page: str | Path | None = None) -> dict:
    """The stage: decide; on pass register the package as the champion (`register`), on refusal record the run.

    `register=False` decides only (KFP registers in its own task, under `dsl.If`); `refusals=False` also leaves
    the registry untouched on a refusal. The explain stage's output (`explanation`, and its page) joins the checks
    and is registered with the version. With gate.infra_validate the package is first started with `graft serve`
    and sent test rows (`infra.validate`).

    The order is a transaction's: the verdict (and its Markdown table) is written first, so an unwritable output
    stops the run before the registry is touched; then the version is registered and the alias moved last
    (`registry.promote`, which re-reads the champion under the registry lock); then the verdict is written again
    with the registered version. A registry failure rewrites the verdict as not passed, with `promotion_error`,
    and is raised: a fault never leaves a passing verdict behind.
    """
    measured = outputs.read(evaluation, "evaluate"), outputs.read(export, "export")
    explained = outputs.read(explanation, "explain") if explanation else None
    served = infra.validate(package, split_dir, cfg) if cfg.gate.infra_validate else None
    verdict = {**decide(*measured, cfg.gate, explained, served), "registered": None}
    if served is not None:
        verdict["infra_validation"] = served
    _write(out, table, verdict)
    if verdict["passed"] and register:
        attached = [p for p in (explanation, explanation_page) if p]
        try:
            verdict["registered"] = registry.promote(package, split_dir, cfg, *measured, verdict, explained, attached)
        except GraftError as exc:  # the checks passed, the promotion did not happen: never a passing verdict
            _write(out, table, {**verdict, "passed": False, "promotion_error": str(exc),
                                "reasons": [f"registry: {exc}"]})
            raise
        return _write(out, table, verdict)
    if not verdict["passed"] and refusals:
        verdict["recorded_run"] = registry.record_refusal(split_dir, cfg, *measured, verdict, package)
        return _write(out, table, verdict)
    return verdict


def _write(out: str | Path, table: str | Path | None, verdict: dict) -> dict:
    verdict = outputs.write(out, "gate", verdict)
    if table:
        write_text(table, markdown(verdict))
    return verdict

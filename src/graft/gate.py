"""The `gate` stage: one promotion policy, read by DVC (exit code) and KFP (`dsl.If`) alike."""

from __future__ import annotations

from graft.config import GateConfig


def _check(name: str, value: float, threshold: float, passed: bool, why: str) -> dict:
    return {"name": name, "value": round(value, 6), "threshold": threshold, "passed": bool(passed), "why": why}


def decide(evaluation: dict, export: dict, policy: GateConfig) -> dict:
    """Apply the policy to the evaluate and export metrics; return {"passed", "reasons", "checks"}.

    `reasons` holds one sentence per failed check (empty when everything passed).
    """
    ft, sc = evaluation["finetune"], evaluation["scratch"]
    margin = ft["macro_f1"] - sc["macro_f1"]
    checks = [
        _check("min_macro_f1", ft["macro_f1"], policy.min_macro_f1, ft["macro_f1"] >= policy.min_macro_f1,
               f"fine-tuned macro-F1 {ft['macro_f1']:.4f} vs floor {policy.min_macro_f1}"),
        _check("beats_scratch", margin, policy.min_margin_over_scratch, margin >= policy.min_margin_over_scratch,
               f"fine-tuned minus scratch macro-F1 is {margin:+.4f}, margin required {policy.min_margin_over_scratch}"
               + ("" if margin > 0 else " (negative transfer)")),
        *parity_checks(export, policy),
    ]
    reasons = [f"{c['name']}: {c['why']}" for c in checks if not c["passed"]]
    return {"passed": not reasons, "reasons": reasons, "checks": checks}


def parity_checks(export: dict, policy: GateConfig) -> list[dict]:
    """The export's proof on the test split: fp32 ONNX matches PyTorch, int8 stays close to fp32."""
    fp32, int8, ref = export["fp32"], export["int8"], export["torch"]
    # accuracies carry 4 decimals: round the point differences so 0.5 pt compares as 0.5, not 0.5000000000000004
    delta = round(100 * abs(fp32["accuracy"] - ref["accuracy"]), 6)
    drop = round(100 * (fp32["accuracy"] - int8["accuracy"]), 6)
    return [
        _check("onnx_max_abs_diff", fp32["max_abs_diff"], policy.max_onnx_logit_diff,
               fp32["max_abs_diff"] <= policy.max_onnx_logit_diff,
               f"largest |logit| difference fp32 ONNX vs PyTorch {fp32['max_abs_diff']:.2e}, allowed "
               f"{policy.max_onnx_logit_diff:.0e} (ONNX parity broken)"),
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


def markdown(verdict: dict) -> str:
    """The verdict as a Markdown table (KFP UI, report)."""
    head = "**PASSED**: the candidate may be promoted" if verdict["passed"] else "**FAILED**: not promoted"
    lines = [head, "", "| check | value | threshold | passed | why |", "|---|---|---|---|---|"]
    for c in verdict["checks"]:
        ok = "yes" if c["passed"] else "NO"
        lines.append(f"| {c['name']} | {c['value']} | {c['threshold']} | {ok} | {c['why']} |")
    return "\n".join(lines) + "\n"

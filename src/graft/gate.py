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
        _check("onnx_agreement", export["agreement"], policy.min_onnx_agreement,
               export["agreement"] >= policy.min_onnx_agreement,
               f"ONNX vs PyTorch label agreement {export['agreement']:.4f} vs required {policy.min_onnx_agreement}"),
    ]
    reasons = [f"{c['name']}: {c['why']}" for c in checks if not c["passed"]]
    return {"passed": not reasons, "reasons": reasons, "checks": checks}


def markdown(verdict: dict) -> str:
    """The verdict as a Markdown table (KFP UI, report)."""
    head = "**PASSED**: the candidate may be promoted" if verdict["passed"] else "**FAILED**: not promoted"
    lines = [head, "", "| check | value | threshold | passed | why |", "|---|---|---|---|---|"]
    for c in verdict["checks"]:
        ok = "yes" if c["passed"] else "NO"
        lines.append(f"| {c['name']} | {c['value']} | {c['threshold']} | {ok} | {c['why']} |")
    return "\n".join(lines) + "\n"

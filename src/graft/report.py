"""Human summaries of a run, read back from the metrics files the stages wrote."""

from __future__ import annotations

from pathlib import Path

from graft.artifacts import read_json


def _load(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def summary(metrics_dir: str | Path, model_dir: str | Path) -> str:
    """The summary of a DVC run, from the metrics files in `metrics_dir`."""
    m = Path(metrics_dir)
    ev, gate, exp, sel = (_load(m / f"{n}.json") for n in ("evaluate", "gate", "export", "select"))
    return render(sel, ev, exp, gate, model_dir)


def render(sel: dict | None, ev: dict | None, exp: dict | None, gate: dict | None, model_dir: str | Path) -> str:
    """A short text summary: selection, fine-tuned vs scratch, ONNX parity, the verdict and where the model went."""
    out = ["", "graft run summary", "================="]
    if sel:
        out.append(f"backbone       : {sel['selected']} (probe accuracy "
                   f"{sel['ranking'][0]['probe_accuracy']:.3f}, {len(sel['ranking'])} candidates)")
    if ev:
        out.append(f"{'':15}  {'accuracy':>9} {'macro-F1':>9}")
        for name in ("finetune", "scratch"):
            out.append(f"{name:15}: {ev[name]['accuracy']:9.4f} {ev[name]['macro_f1']:9.4f}")
        out.append(f"transfer gain  : {ev['finetune']['macro_f1'] - ev['scratch']['macro_f1']:+.4f} macro-F1 "
                   f"on {ev['finetune']['rows']} test rows")
    if exp:
        out.append(f"ONNX parity    : agreement {exp['agreement']:.4f}, max |logit diff| {exp['max_abs_diff']:.2e}")
    if gate is None:
        out.append("gate           : not reached (see the errors above)")
    else:
        out.append(f"gate           : {'PASSED' if gate['passed'] else 'FAILED'}")
        out += [f"  - {r}" for r in gate["reasons"]]
        reg = gate.get("registered")
        if reg:
            out.append(f"model          : {reg['model_name']} version {reg['version']} -> alias "
                       f"'{reg['alias']}' in {reg['tracking_uri']}")
        else:
            out.append("model          : not registered")
    out.append(f"ONNX package   : {Path(model_dir).resolve()}")
    return "\n".join(out) + "\n"

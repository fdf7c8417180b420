"""The text summary a run prints at its end (`graft summary`), read back from the metrics files the stages wrote."""

from __future__ import annotations

from pathlib import Path

from graft.core import outputs
from graft.core.errors import GraftError


def summary(metrics_dir: str | Path, model_dir: str | Path, since: float | None = None) -> str:
    """The summary of a DVC run, from the metrics files in `metrics_dir`.

    `since` (epoch seconds) marks a failed run: metrics files older than it are left out, since an earlier run
    wrote them and they do not describe this one.
    """
    m = Path(metrics_dir)
    if not m.is_dir():
        raise GraftError(f"{m}: no such metrics folder (give the folder the pipeline wrote, e.g. metrics; "
                         f"`make run` writes it)")

    def fresh(name: str) -> dict | None:
        path = m / f"{name}.json"
        return outputs.read(path, name) if path.is_file() and (since is None or path.stat().st_mtime >= since) \
            else None

    ev, gate, exp, sel, tr, xp = (fresh(n) for n in ("evaluate", "gate", "export", "select", "train", "explain"))
    if since is None and not any((sel, ev, exp, gate, tr, xp)):
        raise GraftError(f"{m}: no stage's metrics in this folder (select.json ... gate.json); run the pipeline first")
    text = render(sel, ev, exp, gate, model_dir, tr, xp)
    return text if since is None else text.replace("graft run summary", "graft run summary (the run FAILED; "
                                                   "only results written by this run are shown)")


def render(sel: dict | None, ev: dict | None, exp: dict | None, gate: dict | None, model_dir: str | Path,
           tr: dict | None = None, xp: dict | None = None) -> str:
    """A short text summary: selection, fine-tuned vs scratch, ONNX parity, the verdict and where the model went."""
    out = ["", "graft run summary", "================="]
    if sel:
        best = sel["ranking"][0]
        out.append(f"backbone       : {sel['selected']} (LogME {best['logme']:.3f}, probe accuracy "
                   f"{best['probe_accuracy']:.3f}; {sum(r['eligible'] for r in sel['ranking'])} of "
                   f"{len(sel['ranking'])} candidates within budgets)")
    if tr and "mode" in tr:
        resumed = f"; resumed at epoch {tr['resumed_from']['epoch']}" if tr.get("resumed_from") else ""
        out.append(f"training       : {tr['mode']}, {tr['precision']} on {tr['device']} ({tr['threads']} threads), "
                   f"best epoch {tr['best_epoch']} of {len(tr['history'])}, "
                   f"{tr['examples_per_second']:.0f} examples/s, {tr['seconds']:.1f} s{resumed}")
    check = (ev or {}).get("selfcheck")
    if check and len(check["candidates"]) > 1:
        out.append(f"selfcheck      : Kendall tau {check['kendall_tau']:+.2f} between predicted rank and test "
                   f"{check['metric']} ({check['note']})" if check["kendall_tau"] is not None else
                   f"selfcheck      : tau undefined (tied test scores); {check['note']}")
        out += [f"  rank {c['predicted_rank']} {c['name']:20}: test macro-F1 {c['test_macro_f1']:.4f} "
                f"(test rank {c['test_rank']})" for c in check["candidates"]]
    elif check:
        out.append(f"selfcheck      : {check['note']}")
    if ev:
        out.append(f"{'':15}  {'accuracy':>9} {'macro-F1':>9}")
        for name, what in (("finetune", "fine-tuned"), ("scratch", "same arch, random init"),
                           ("classical", ev.get("classical", {}).get("method", "TF-IDF + logistic regression"))):
            if name in ev:
                out.append(f"{name:15}: {ev[name]['accuracy']:9.4f} {ev[name]['macro_f1']:9.4f}   ({what})")
        out.append(f"transfer gain  : {ev['finetune']['macro_f1'] - ev['scratch']['macro_f1']:+.4f} macro-F1 "
                   f"on {ev['finetune']['rows']} test rows")
        for name, c in ev.get("comparisons", {}).items():
            f1 = c["macro_f1"]
            out.append(f"  {name.replace('_vs_', ' - '):21}: macro-F1 {f1['diff']:+.4f}, 95% CI [{f1['ci_low']:+.4f}, "
                       f"{f1['ci_high']:+.4f}], McNemar p = {c['mcnemar']['p_value']:.3g}")
    dom = (ev or {}).get("domains")
    if dom:
        for domain in ("source", "target"):
            if dom.get(domain):
                out.append(f"{domain + ' test':15}: macro-F1 " + ", ".join(
                    f"{m} {s['macro_f1']:.4f}" for m, s in dom[domain].items()) + f" ({dom['rows'][domain]} rows)")
        out.append(f"adaptation     : {dom['method']}; goes on: {dom['chosen']} ({dom['why']})")
    for name, f in ((xp or {}).get("faithfulness") or {}).items():
        lo, hi = f["ratio_ci"]
        out.append(f"{'explanations' if name == 'model' else '  ' + name:15}: deleting the top "
                   f"{100 * f['fraction']:.0f}% attributed units drops p by {f['top_drop']:.4f} vs "
                   f"{f['random_drop']:.4f} for random ones (ratio {f['ratio']}, 95% CI {lo} to {hi}); complete "
                   f"{f['completeness']['share']} of {f['items']}"
                   + (f"; {xp['seconds']} s" if name == "model" else ""))
    for c in (xp or {}).get("shortcuts") or []:
        out.append(f"  WARNING      : possible shortcut: {c['kind']} carries {c['share']:.0%} of the evidence for "
                   f"{c['label']} ({', '.join(c['units'][:4])}); see reports/explain.html")
    if exp:
        f32, i8 = exp["fp32"], exp["int8"]
        out.append(f"ONNX parity    : fp32 agreement {f32['agreement']:.4f}, max |logit diff| "
                   f"{f32['max_abs_diff']:.2e}; int8 accuracy {i8['accuracy']:.4f} vs fp32 {f32['accuracy']:.4f} "
                   f"({exp['size_mb']['int8']} MB vs {exp['size_mb']['fp32']} MB)")
    if gate is None:
        out.append("gate           : not reached (see the errors above)")
    else:
        out.append(f"gate           : {'PASSED' if gate['passed'] else 'FAILED'}")
        width = max([22] + [len(c["name"]) for c in gate.get("checks", [])])
        for c in gate.get("checks", []):
            ci = f" [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" if c.get("ci_low") is not None else ""
            mark = "ok " if c["passed"] else "-- " if c.get("blocking") is False else "NO "
            out.append(f"  {mark} {c['name']:{width}} {c['value']:+.6g}{ci} vs {c['threshold']}")
        out += [f"  - {r}" for r in gate["reasons"]]
        reg = gate.get("registered")
        if reg:
            out.append(f"model          : {reg['model_name']} version {reg['version']} -> alias "
                       f"'{reg['alias']}' in {reg['tracking_uri']}")
            if reg["alias"] == "challenger":
                out.append(f"                 awaiting approval: graft approve --version {reg['version']} --by NAME "
                           "--note TEXT (or graft reject)")
        else:
            out.append("model          : not registered" + (f" ({gate['promotion_error']})"
                                                             if gate.get("promotion_error") else ""))
    out.append(f"ONNX package   : {Path(model_dir).resolve()}")
    return "\n".join(out) + "\n"

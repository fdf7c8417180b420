"""Human summaries of a run, read back from the metrics files the stages wrote."""

from __future__ import annotations

import html
import json
from pathlib import Path

from graft.artifacts import read_json


def _load(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def summary(metrics_dir: str | Path, model_dir: str | Path, since: float | None = None) -> str:
    """The summary of a DVC run, from the metrics files in `metrics_dir`.

    `since` (epoch seconds) marks a failed run: metrics files older than it are left out, since an earlier run
    wrote them and they do not describe this one.
    """
    m = Path(metrics_dir)

    def fresh(name: str) -> dict | None:
        path = m / f"{name}.json"
        return _load(path) if path.is_file() and (since is None or path.stat().st_mtime >= since) else None

    ev, gate, exp, sel, tr = (fresh(n) for n in ("evaluate", "gate", "export", "select", "train"))
    text = render(sel, ev, exp, gate, model_dir, tr)
    return text if since is None else text.replace("graft run summary", "graft run summary (the run FAILED; "
                                                   "only results written by this run are shown)")


def render(sel: dict | None, ev: dict | None, exp: dict | None, gate: dict | None, model_dir: str | Path,
           tr: dict | None = None) -> str:
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
    check = (ev or {}).get("selection_check")
    if check and len(check["candidates"]) > 1:
        out.append(f"selection audit: Kendall tau {check['kendall_tau']:+.2f} between predicted rank and test "
                   f"{check['metric']} ({check['note']})" if check["kendall_tau"] is not None else
                   f"selection audit: tau undefined (tied test scores); {check['note']}")
        out += [f"  rank {c['predicted_rank']} {c['name']:20}: test macro-F1 {c['test_macro_f1']:.4f} "
                f"(test rank {c['test_rank']})" for c in check["candidates"]]
    elif check:
        out.append(f"selection audit: {check['note']}")
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
    if exp:
        f32, i8 = exp["fp32"], exp["int8"]
        out.append(f"ONNX parity    : fp32 agreement {f32['agreement']:.4f}, max |logit diff| "
                   f"{f32['max_abs_diff']:.2e}; int8 accuracy {i8['accuracy']:.4f} vs fp32 {f32['accuracy']:.4f} "
                   f"({exp['size_mb']['int8']} MB vs {exp['size_mb']['fp32']} MB)")
    if gate is None:
        out.append("gate           : not reached (see the errors above)")
    else:
        out.append(f"gate           : {'PASSED' if gate['passed'] else 'FAILED'}")
        for c in gate.get("checks", []):
            ci = f" [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" if c.get("ci_low") is not None else ""
            out.append(f"  {'ok ' if c['passed'] else 'NO '} {c['name']:22} {c['value']:+.6g}{ci} vs {c['threshold']}")
        out += [f"  - {r}" for r in gate["reasons"]]
        reg = gate.get("registered")
        if reg:
            out.append(f"model          : {reg['model_name']} version {reg['version']} -> alias "
                       f"'{reg['alias']}' in {reg['tracking_uri']}")
        else:
            out.append("model          : not registered")
    out.append(f"ONNX package   : {Path(model_dir).resolve()}")
    return "\n".join(out) + "\n"


def _cell(value) -> str:
    return html.escape(json.dumps(value) if isinstance(value, (dict, list)) else "" if value is None else str(value))


def validation_html(report: dict, where: str, site: Path | None = None) -> str:
    """One self-contained page of a validation run (a single file, so it also serves as a KFP HTML artifact).

    Every check with its observed value, threshold and risk, then the run's GX Data Docs validation pages embedded
    with iframe `srcdoc`.
    """
    verdict = "PASSED" if report["passed"] else "FAILED"
    rows = []
    for c in report["checks"]:
        state = "fail" if not c["passed"] else "warn" if c.get("warning") else "ok"
        rows.append(f"<tr class='{state}'><td>{_cell(c['table'])}</td><td>{_cell(c['name'])}</td>"
                    f"<td>{_cell(c['observed'])}</td><td>{_cell(c.get('threshold'))}</td><td>{state}</td>"
                    f"<td>{_cell(c['detail'])}</td><td>{_cell(c['risk'])}</td></tr>")
    pages = sorted((site / "validations").rglob("*.html")) if site and (site / "validations").is_dir() else []
    frames = "".join(f"<h3>{html.escape(p.stem)}</h3><iframe srcdoc=\"{html.escape(p.read_text())}\"></iframe>"
                     for p in pages)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>graft data validation: {verdict}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}} tr.fail{{background:#fdd}}
tr.warn{{background:#ffe9b3}} iframe{{width:100%;height:480px;border:1px solid #ccc}}</style></head><body>
<h1>Data validation: {verdict}</h1><p>{html.escape(where)}: {len(report['checks'])} checks,
{sum(not c['passed'] for c in report['checks'])} failed, {sum(bool(c.get('warning')) for c in report['checks'])}
warnings.</p><table><tr><th>table</th><th>check</th><th>observed</th><th>threshold</th><th>status</th>
<th>detail</th><th>risk it guards</th></tr>{''.join(rows)}</table>
<h2>Great Expectations Data Docs</h2>{frames or '<p>(no Data Docs pages in this run)</p>'}</body></html>
"""


def _backbone(b: dict) -> str:
    layers = f", first {b['num_layers']} layers" if b.get("num_layers") else ""
    return f"{b.get('name', '?')} ({b.get('source', '?')}{layers})"


def model_card(meta: dict, tags: dict, evaluation: dict, parity: dict, verdict: dict) -> str:
    """The Markdown model card registered with each version.

    Data, backbone, metrics with intervals, the gate verdict, intended use and limits.
    """
    from graft.gate import markdown

    labels, image = meta.get("labels", []), meta.get("modality") == "image"
    lines = [f"# Model card: {meta.get('backbone', {}).get('name', '?')} fine-tuned for {', '.join(labels)}", "",
             "## Data",
             f"- data md5 {tags.get('graft.data_md5', '?')}, {meta.get('train_rows', '?')} training rows, "
             f"evaluated on {evaluation.get('finetune', {}).get('rows', '?')} held-out test rows",
             f"- code {tags.get('graft.git_commit', '?')}, params hash {tags.get('graft.params_hash', '?')}", "",
             "## Backbone and training",
             f"- {_backbone(meta.get('backbone', {}))}, `{meta.get('mode', 'finetune')}` mode, init "
             f"{meta.get('init_from', '?')}, best epoch {meta.get('best_epoch', '?')}, " +
             (f"{meta.get('image_size', '?')} px inputs" if image else f"max_length {meta.get('max_length', '?')}"),
             "",
             "## Test metrics", "", "| model | accuracy | macro-F1 | ECE |", "|---|---|---|---|"]
    champion = (evaluation.get("champion") or {}).get("scores")
    for name, m in (("fine-tuned", evaluation.get("finetune")), ("scratch", evaluation.get("scratch")),
                    ((evaluation.get("classical") or {}).get("method", "TF-IDF + LR"), evaluation.get("classical")),
                    ("previous champion", champion)):
        if m:
            lines.append(f"| {name} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m.get('ece', float('nan')):.4f} |")
    lines += ["", "| comparison (macro-F1) | difference | 95% CI | McNemar p |", "|---|---|---|---|"]
    for name, c in evaluation.get("comparisons", {}).items():
        f1 = c["macro_f1"]
        lines.append(f"| {name} | {f1['diff']:+.4f} | [{f1['ci_low']:+.4f}, {f1['ci_high']:+.4f}] | "
                     f"{c['mcnemar']['p_value']:.3g} |")
    if parity.get("fp32"):
        lines += ["", f"ONNX: fp32 accuracy {parity['fp32']['accuracy']:.4f} (agreement with PyTorch "
                  f"{parity['fp32']['agreement']:.4f}), int8 {parity['int8']['accuracy']:.4f}; "
                  f"{parity['size_mb']['fp32']} MB / {parity['size_mb']['int8']} MB"]
    lines += ["", "## Gate verdict", "", markdown(verdict) if verdict.get("checks") else
              ("PASSED" if verdict.get("passed") else "FAILED"),
              "## Intended use",
              f"Classifying {'images' if image else 'short texts'} like its training data into {labels}, served "
              "from the ONNX package (`graft predict`).", "",
              "## Limits",
              "- Scores hold for data like the training version above; `graft validate` measures drift before a "
              "retrain, not while serving.",
              (f"- Images are resized to {meta.get('image_size', '?')} px squares (aspect ratio not kept)"
               if image else f"- Texts are truncated to {meta.get('max_length', '?')} tokens") +
              "; labels outside the set above are never predicted.",
              "- Confidence intervals cover test-set sampling only, not a shift in the data.", ""]
    return "\n".join(lines)

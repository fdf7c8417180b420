"""The run report: the page a person opens after a run (`graft report`); the runs index is in graft.report.runs.

Both pages are single, self-contained files that work offline: no script, no CDN, no external asset; plots are
inline SVG drawn by matplotlib with text kept as text (so numbers in a plot can be searched and read by a browser test).
The report answers, at the top, the four questions a reviewer asks of a retraining run: was the data valid, which
backbone, did transfer beat scratch and by how much (with its interval), and was the model promoted and why.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from graft import modalities
from graft.core import glossary, outputs
from graft.core.artifacts import read_json, write_text
from graft.explain import page as explain_page
from graft.promote import lineage, registry
from graft.report.charts import STYLE, confusion, esc, intervals, learning_curves, table_html
from graft.report.domains import section as domains_section


def _answers(d: dict) -> str:
    val, sel, ev, gate = d.get("validate"), d.get("select"), d.get("evaluate"), d.get("gate")
    items = []
    if val:
        failed = [c for c in val["checks"] if not c["passed"]]
        items.append(f"<b>Data valid?</b> {'yes' if val['passed'] else 'NO'}: {len(val['checks'])} checks, "
                     f"{len(failed)} failed, {sum(bool(c.get('warning')) for c in val['checks'])} drift warnings")
    if sel:
        items.append(f"<b>Backbone:</b> {esc(sel['selected'])} (ranked first of {len(sel['ranking'])} by "
                     f"{esc(sel['rank_by'])})")
    if ev:
        c = ev["comparisons"]["finetune_vs_scratch"]["macro_f1"]
        beat = "yes" if c["ci_low"] > 0 else "NO" if c["ci_high"] < 0 else "not shown (the interval holds zero)"
        items.append(f"<b>Transfer beat scratch?</b> {beat}: macro-F1 {ev['finetune']['macro_f1']:.4f} vs "
                     f"{ev['scratch']['macro_f1']:.4f}, difference {c['diff']:+.4f} (95% CI {c['ci_low']:+.4f} to "
                     f"{c['ci_high']:+.4f})")
    if gate:
        reg = gate.get("registered")
        why = "every gate check passed" if gate["passed"] else "; ".join(gate["reasons"])
        promoted = (f"yes, as {esc(reg['model_name'])} v{reg['version']}" if reg and reg["alias"] != "challenger"
                    else f"awaiting approval: {esc(reg['model_name'])} v{reg['version']} is the challenger (graft "
                    "approve / graft reject)" if reg else "no")
        items.append(f"<b>Promoted?</b> {promoted} — {esc(why)}")
    return "<ul class='answers'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _data_section(val: dict | None, manifest: dict | None) -> str:
    if not val:
        return "<p>validation did not run</p>"
    rows = [[esc(c["table"]), esc(c["name"]), esc("" if c["observed"] is None else c["observed"]),
             esc(c.get("threshold") or ""),
             "<span class='bad'>FAILED</span>" if not c["passed"] else "warning" if c.get("warning") else "ok",
             esc(c["detail"])] for c in val["checks"] if not c["passed"] or c.get("warning") or c["table"] == "version"]
    sizes = ", ".join(f"{k} {v}" for k, v in (manifest or {}).get("rows", {}).items())
    return (f"<p>Great Expectations suite: <b>{'PASSED' if val['passed'] else 'FAILED'}</b>, {len(val['checks'])} "
            f"checks. Splits: {esc(sizes) or '?'}. Failures, warnings and drift against the previous version:</p>"
            + table_html(["table", "check", "observed", "threshold", "status", "detail"], rows))


def _backbone_section(sel: dict | None, ev: dict | None) -> str:
    if not sel:
        return "<p>selection did not run</p>"
    rows = [[f"{i}", esc(r["name"]) + (" <b>(selected)</b>" if r["name"] == sel["selected"] else ""),
             f"{r['logme']:.4f}", f"{r['probe_accuracy']:.4f}", f"{r['params']:,}",
             f"{r['latency_ms']['batch_1']:.2f} / {r['latency_ms']['batch_32']:.2f}",
             "yes" if r["eligible"] else esc(r["reason"])] for i, r in enumerate(sel["ranking"], 1)]
    audit = (ev or {}).get("selfcheck")
    note = f"<p>Selection audit: {esc(audit['note'])} (Kendall tau {audit['kendall_tau']})</p>" if audit else ""
    return table_html(["rank", "backbone", "LogME", "probe accuracy", "params", "ms/example b1 / b32", "eligible"],
                  rows) + note


def _comparison_section(ev: dict | None) -> str:
    if not ev:
        return "<p>evaluation did not run</p>"
    models = [("fine-tuned", ev["finetune"]), ("scratch (same architecture)", ev["scratch"]),
              (ev["classical"].get("method", "classical"), ev["classical"])]
    if (ev.get("champion") or {}).get("scores"):
        models.append((f"champion v{ev['champion']['version']} (re-scored now)", ev["champion"]["scores"]))
    rows = [[esc(n), f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}", f"{m.get('ece', float('nan')):.4f}"]
            for n, m in models]
    comp = [[esc(n), f"{c['macro_f1']['diff']:+.4f}",
             f"[{c['macro_f1']['ci_low']:+.4f}, {c['macro_f1']['ci_high']:+.4f}]", f"{c['mcnemar']['p_value']:.3g}"]
            for n, c in ev["comparisons"].items()]
    champ = (ev.get("champion") or {}).get("note", "")
    return (table_html(["model", "accuracy", "macro-F1", "ECE"], rows) + f"<p>{esc(champ)}</p>"
            + table_html(["comparison", "macro-F1 difference", "95% CI (paired bootstrap)", "McNemar p"], comp)
            + "<div class='plots'>" + intervals(ev["comparisons"])
            + confusion(ev["labels"], ev["finetune"]["confusion_matrix"]) + "</div>")


def _gate_section(gate: dict | None) -> str:
    if not gate:
        return "<p>the gate was not reached</p>"
    rows = [[esc(c["name"]), esc(c["value"]),
             f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" if c.get("ci_low") is not None else "",
             esc(c["threshold"]), "<span class='ok'>yes</span>" if c["passed"] else "no (decides, never refuses)"
             if c.get("blocking") is False else "<span class='bad'>NO</span>",
             esc(c["why"])] for c in gate["checks"]]
    return table_html(["check", "value", "95% CI", "threshold", "passed", "why"], rows)


def _onnx_section(exp: dict | None) -> str:
    if not exp:
        return "<p>export did not run</p>"
    rows = [[name, f"{exp[name]['accuracy']:.4f}", f"{exp[name]['agreement']:.4f}",
             f"{exp[name]['max_abs_diff']:.2e}", f"{exp['size_mb'][name]} MB"] for name in ("fp32", "int8")]
    lat = [[esc(k), v["batch_1_p50"], v["batch_1_p95"], v["batch_32_per_example"]]
           for k, v in (exp.get("latency_ms") or {}).items()]
    return (f"<p>PyTorch test accuracy {exp['torch']['accuracy']:.4f} on {exp['rows']} rows.</p>"
            + table_html(["ONNX model", "test accuracy", "agreement with PyTorch", "max |logit diff|", "size"], rows)
            + table_html(["runtime", "batch 1 p50 (ms)", "batch 1 p95 (ms)", "batch 32, per example (ms)"], lat))


def _domains(d: dict) -> str:
    body = domains_section(d.get("evaluate"), d.get("select"))
    return f'<h2 id="domains">Domains and adaptation</h2>{body}' if body else ""


def _explain(d: dict) -> str:
    ex = d.get("explain")
    if not ex:
        return ""
    body = explain_page.section(ex, modalities.get(ex["modality"]), d.get("explain_items", {}))
    return f'<h2 id="explanations">Explanations</h2>{body}'


def _links(d: dict, registry_uri: str) -> str:
    """The bar linking this page to the runs index, the explanations, the data validation and the MLflow version."""
    reg = (d.get("gate") or {}).get("registered")
    links = ['<a href="runs.html">runs index</a>', '<a href="explain.html">explanations</a>' if d.get("explain")
             else "", '<a href="validate/summary.html">data validation</a>', '<a href="validate/index.html">Great '
             'Expectations Data Docs</a>', '<a href="#glossary">glossary</a>']
    if reg:
        ui = registry_uri.rstrip("/") if registry_uri.startswith("http") else "http://127.0.0.1:5000"
        hint = "" if registry_uri.startswith("http") else \
            f" (with <code>mlflow ui --backend-store-uri {esc(registry_uri)}</code>)"
        links.append(f'<a href="{esc(ui)}/#/models/{esc(reg["model_name"])}/versions/{reg["version"]}">MLflow: '
                     f'{esc(reg["model_name"])} v{reg["version"]}</a>{hint}')
    return '<nav class="links">' + " · ".join(x for x in links if x) + "</nav>"


def render(d: dict, lineage: dict[str, str], title: str, registry_uri: str = "") -> str:
    """The report page from the stage outputs in `d`, read top-down.

    The verdict, the gate's checks, the comparisons, the training and the data behind them, then the explanations,
    the export and the lineage; a glossary of the terms used last.
    """
    gate = d.get("gate")
    reg = (gate or {}).get("registered")
    verdict = ("AWAITING APPROVAL" if reg and reg["alias"] == "challenger" else "PROMOTED" if reg
               else "PASSED (not registered)") \
        if gate and gate["passed"] else "REFUSED" if gate else "INCOMPLETE (the gate was not reached)"
    histories = {name: d[key]["history"] for key, name in (("train", "fine-tuned"), ("baseline", "scratch"))
                 if d.get(key)}
    t = d.get("train") or {}
    curves = learning_curves(histories) if histories else ""
    train_line = (f"{t.get('mode', '?')} mode, {t.get('precision', '?')} on {t.get('device', '?')}, best epoch "
                  f"{t.get('best_epoch', '?')} of {len(t.get('history', []))}, {t.get('seconds', '?')} s")
    lines = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(v)}</code></td></tr>" for k, v in lineage.items())
    body = f"""<h1>{esc(title)}</h1>{_links(d, registry_uri)}
<div class="banner {'pass' if gate and gate['passed'] else 'fail'}" id="verdict"><b>{verdict}</b></div>{_answers(d)}
{explain_page.shortcuts_html(d.get('explain') or {}, 'shortcuts')}
<h2 id="gate">Gate checks</h2>{_gate_section(gate)}
<h2 id="comparison">Fine-tuned vs scratch vs classical vs champion</h2>{_comparison_section(d.get('evaluate'))}
{_domains(d)}
<h2 id="training">Training</h2><p>{esc(train_line)}</p><div class="plots">{curves}</div>
<h2 id="backbone">Backbone ranking</h2>{_backbone_section(d.get('select'), d.get('evaluate'))}
<h2 id="data">Data validation and drift</h2>{_data_section(d.get('validate'), d.get('manifest'))}
{_explain(d)}
<h2 id="onnx">ONNX parity and latency</h2>{_onnx_section(d.get('export'))}
<h2 id="lineage">Lineage</h2><table>{lines}</table>"""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}: {verdict}</title>
<style>{STYLE}</style></head><body>
{body}
{glossary.section(body)}
</body></html>
"""


STAGE_FILES = ("validate", "select", "train", "baseline", "evaluate", "explain", "export", "gate")


def collect(metrics_dir: str | Path, split_dir: str | Path | None = None, since: float | None = None) -> dict:
    """The stage outputs a report reads, from a DVC metrics folder (missing ones are left out).

    `since` (epoch seconds) marks a failed run: files older than it were written by an earlier run and are left out.
    """
    m = Path(metrics_dir)
    d = {name: outputs.read(m / f"{name}.json", name) for name in STAGE_FILES
         if (m / f"{name}.json").is_file() and (since is None or (m / f"{name}.json").stat().st_mtime >= since)}
    if split_dir and (Path(split_dir) / "manifest.json").is_file():
        d["manifest"] = read_json(Path(split_dir) / "manifest.json")
    if split_dir and d.get("explain") and (Path(split_dir) / "test.parquet").is_file():
        d["explain_items"] = _explained_inputs(d["explain"], split_dir)
    return d


def _explained_inputs(ex: dict, split_dir: str | Path) -> dict[int, object]:
    """The test inputs the explain stage shows (images are drawn from their bytes), by test row."""
    import pandas as pd

    test = pd.read_parquet(Path(split_dir) / "test.parquet")
    rows = [r["row"] for r in ex["examples"] if r["row"] < len(test)]
    items = modalities.get(ex["modality"]).examples(test.iloc[rows])
    return dict(zip(rows, items))


def report(cfg, d: dict, out: str | Path) -> Path:
    """Write the run report for config `cfg` and stage outputs `d` to `out` (atomically)."""
    facts = {"model name": cfg.registry.model_name, "modality": cfg.data.modality,
             "data md5": (d.get("manifest") or {}).get("source_md5", "?"), "git commit": lineage.git_commit(),
             "params hash": lineage.params_hash(cfg),
             "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")}
    write_text(out, render(d, facts, f"graft run report — {cfg.registry.model_name}",
                           registry.tracking_uri(cfg.registry)))
    return Path(out)

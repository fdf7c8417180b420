"""The report's "Domains and adaptation" section: each model on both domains, the skew before and after."""

from __future__ import annotations

from graft.report.charts import esc, intervals, pyplot, svg, table_html

MODELS = {"source_only": "fine-tuned, source only", "adapted": "adapted", "scratch": "scratch",
          "classical": "classical"}


def projections(skew: dict[str, dict]) -> str:
    """Training (source) and target features in each model's 2-D PCA plane, side by side."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(skew), figsize=(3.6 * len(skew), 3.2), squeeze=False)
    for ax, (name, s) in zip(axes[0], skew.items()):
        for domain, colour in (("source", "tab:blue"), ("target", "tab:orange")):
            pts = s["projection"][domain]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, alpha=0.5, c=colour, label=domain)
        ax.set(title=f"{MODELS.get(name, name)}: domain AUC {s['auc']:.3f}", xticks=[], yticks=[])
        ax.legend(fontsize=7, markerscale=2)
    return svg(fig)


def section(ev: dict | None, sel: dict | None) -> str:
    """The section's HTML, or "" when the run had no target domain."""
    dom = (ev or {}).get("domains")
    if not dom:
        return ""
    present = [d for d in ("source", "target") if dom.get(d)]
    names = [m for m in MODELS if m in dom["source"]]
    rows = [[esc(MODELS[m] if m != "classical" else dom["source"][m].get("method", m))]
            + [f"{dom[d][m]['macro_f1']:.4f} / {dom[d][m]['accuracy']:.4f}" for d in present] for m in names]
    comp = [[esc(f"{d}: {n.replace('_vs_', ' - ')}"), f"{c['macro_f1']['diff']:+.4f}",
             f"[{c['macro_f1']['ci_low']:+.4f}, {c['macro_f1']['ci_high']:+.4f}]", f"{c['mcnemar']['p_value']:.3g}"]
            for d in present for n, c in dom["comparisons"][d].items()]
    key = {f"{d}: {n}": c for d in present for n, c in dom["comparisons"][d].items()
           if n in ("adapted_vs_source_only", "source_only_vs_classical", "adapted_vs_classical")}
    pre = (sel or {}).get("skew")
    skew_line = f"<p>Skew before training: {esc(pre['why'])}.</p>" if pre else ""
    plots = [intervals(key)] if key else []
    if dom.get("skew"):
        plots.append(projections(dom["skew"]))
    return (f"<p>Adaptation: <b>{esc(dom['method'])}</b>. Goes on: <b>{esc(dom['chosen'])}</b> — {esc(dom['why'])}."
            f"</p>{skew_line}"
            + table_html(["model"] + [f"{d} test macro-F1 / accuracy ({dom['rows'][d]} rows)" for d in present], rows)
            + table_html(["comparison", "macro-F1 difference", "95% CI (paired bootstrap)", "McNemar p"], comp)
            + "<div class='plots'>" + "".join(plots) + "</div>")

"""The runs index: every retraining run in the MLflow store, its macro-F1 over time, and what was promoted."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from graft.core.artifacts import write_text
from graft.promote import audit, registry
from graft.report.charts import STYLE, esc, pyplot, svg, table_html


def _runs(reg) -> tuple[list[dict], dict]:
    """Every gate run of the experiment, oldest first, and {run id: version} of the registered ones."""
    if registry.missing_store(reg) is not None:  # nothing registered yet: no runs, and no empty store left behind
        return [], {}
    mlflow, client = registry.connect(reg)
    exp = client.get_experiment_by_name(reg.experiment)
    if exp is None:
        return [], {}
    runs = client.search_runs([exp.experiment_id], order_by=["attribute.start_time ASC"], max_results=5000)
    try:
        versions = {v.run_id: v for v in client.search_model_versions(f"name = '{reg.model_name}'")}
    except mlflow.exceptions.MlflowException:
        versions = {}
    return [{"run": r, "version": versions.get(r.info.run_id)} for r in runs], versions


def _moves(reg) -> str:
    """The audit log as a table, newest first."""
    if registry.missing_store(reg) is not None:
        return "<p>no registry yet: nothing was registered</p>"
    log = audit.entries(registry.Registry(reg).model_tags())
    if not log:
        return "<p>no alias moves recorded yet</p>"
    rows = [[str(e.get("n", "?")), esc(e.get("when", "?")), esc(e.get("kind", "?")), esc(e.get("alias", "?")),
             "none" if e.get("from") is None else f"v{e['from']}", "none" if e.get("to") is None else f"v{e['to']}",
             esc(e.get("who", "?")), esc(e.get("why", "")), esc((e.get("checks") or "")[:300])] for e in reversed(log)]
    return table_html(["#", "when (UTC)", "kind", "alias", "from", "to", "who", "why", "checks"], rows)


def runs_index(reg, out: str | Path) -> Path:
    """The runs index: every retraining run in the MLflow store, its key metric over time, what was promoted."""
    rows, _ = _runs(reg)
    current = registry.champion(reg)
    table, xs, ys, promoted = [], [], [], []
    for i, row in enumerate(rows, 1):
        r, v = row["run"], row["version"]
        m, t = r.data.metrics, r.data.tags
        f1 = m.get("evaluate.finetune.macro_f1")
        gain = m.get("evaluate.comparisons.finetune_vs_scratch.macro_f1.diff")
        when = datetime.fromtimestamp(r.info.start_time / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
        state = "refused: " + t.get("graft.reasons", "") if t.get("graft.gate") == "failed" else (
            f"promoted as v{v.version}" + (" (champion)" if current and int(v.version) == current["version"] else "")
            if v else "passed")
        table.append([str(i), when, esc(t.get("graft.backbone", "?")), f"{f1:.4f}" if f1 is not None else "?",
                      f"{gain:+.4f}" if gain is not None else "?", esc(t.get("graft.data_md5", "?")[:12]),
                      esc(t.get("graft.git_commit", "?")[:12]), esc(state)])
        if f1 is not None:
            xs.append(i)
            ys.append(f1)
            promoted.append(v is not None)
    plot = ""
    if xs:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 2.6))
        ax.plot(xs, ys, "-", color="#999", lw=1)
        for mark, color, label, kept in (("o", "#176b2c", "promoted", True), ("x", "#b00020", "not promoted", False)):
            points = [(x, y) for x, y, p in zip(xs, ys, promoted) if p == kept]
            if points:
                ax.plot(*zip(*points), mark, color=color, label=label)
        ax.set_xticks(xs if len(xs) <= 20 else xs[::max(1, len(xs) // 20)])
        ax.set(xlabel="run", ylabel="test macro-F1", title="fine-tuned macro-F1 per retraining run")
        ax.legend(fontsize=7)
        plot = svg(fig)
    champ = f"v{current['version']}" if current else "none yet"
    ui = f"mlflow ui --backend-store-uri {reg.tracking_uri}"
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>graft runs: {esc(reg.model_name)}</title><style>{STYLE}</style></head><body>
<h1>graft runs — {esc(reg.model_name)}</h1>
<nav class="links"><a href="run.html">this run's report</a> · <a href="explain.html">its explanations</a> ·
<a href="validate/summary.html">its data validation</a></nav><p id="summary">{len(rows)} runs in experiment
<code>{esc(reg.experiment)}</code>; {sum(promoted)} promoted; current '{esc(reg.alias)}': <b>{champ}</b>.
Browse them with <code>{esc(ui)}</code>.</p>
<div class="plots">{plot}</div>
{table_html(["run", "started (UTC)", "backbone", "test macro-F1", "gain over scratch", "data md5", "commit", "outcome"],
        table)}
<h2 id="moves">Alias moves</h2><p>Every move of the aliases, from the audit log kept in the registry (<code>graft
history</code>): the gate's promotions, approvals and rejections, manual promotions and rollbacks, who made them and
why.</p>
{_moves(reg)}</body></html>
"""
    write_text(out, page)
    return Path(out)

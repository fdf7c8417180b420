"""The validation run's one self-contained page (summary.html; also the KFP HTML artifact of `validate`)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from graft.data.docs_offline import self_contained


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
    frames = "".join(f"<h3>{html.escape(p.stem)}</h3><iframe srcdoc=\"{html.escape(self_contained(p.read_text()))}"
                     f"\"></iframe>" for p in pages)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>graft data validation: {verdict}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px;vertical-align:top}} tr.fail{{background:#fdd}}
tr.warn{{background:#ffe9b3}} iframe{{width:100%;height:480px;border:1px solid #ccc}}</style></head><body>
<h1>Data validation: {verdict}</h1><nav><a href="../run.html">run report</a> · <a href="../runs.html">runs
index</a> · <a href="../explain.html">explanations</a> · <a href="index.html">Great Expectations Data Docs</a></nav>
<p>{html.escape(where)}: {len(report['checks'])} checks,
{sum(not c['passed'] for c in report['checks'])} failed, {sum(bool(c.get('warning')) for c in report['checks'])}
warnings.</p><table><tr><th>table</th><th>check</th><th>observed</th><th>threshold</th><th>status</th>
<th>detail</th><th>risk it guards</th></tr>{''.join(rows)}</table>
<h2>Great Expectations Data Docs</h2>{frames or '<p>(no Data Docs pages in this run)</p>'}</body></html>
"""

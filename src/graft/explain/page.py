"""Explanations as a person reads them: reports/explain.html, the run report's section, and JSON lines.

Self-contained like the run report: no script, no external asset; heat-maps are inline PNGs. The modality draws
its own inputs (shaded words; a heat-map over the image); this module lays out the faithfulness numbers around
them.
"""

from __future__ import annotations

import json
from html import escape

from graft.core import glossary

GLOSSED = "deletion ratio completeness shortcut scratch source_only adapted"  # the terms this page uses
CSS = """.explain .tok{padding:1px 2px;border-radius:3px;line-height:1.9}
.explain .bar{display:inline-block;height:10px;background:#dc3c28;vertical-align:middle}
.explain .evidence{display:inline-block;vertical-align:top;margin:0 24px 12px 0}
.explain .heat{width:112px;height:112px;image-rendering:pixelated}
.explain .heats figure{display:inline-block;margin:0 12px 8px 0;text-align:center}
.explain table{border-collapse:collapse}.explain td,.explain th{padding:2px 8px;border-bottom:1px solid #ddd}
.explain .example{margin:8px 0;padding:6px;border-left:4px solid #ccc}.explain .wrong{border-left-color:#dc3c28}
.explain .legend{color:#444;font-size:.92em}
.warn{background:#fff4d6;border-left:5px solid #e0a100;padding:.5em 1em;margin:.8em 0}"""


LEGEND = ("<span class='tok' style='background:rgba(220,60,40,.8)'>red</span> pushes toward the predicted class, "
          "<span class='tok' style='background:rgba(40,90,220,.8);color:#fff'>blue</span> against it; the stronger "
          "the colour, the larger the score, relative to the input's largest (hover a word or a pixel: its score, "
          "in probability units). A red left edge marks a misclassified input.")
FAITH_LEGEND = ("<p class='legend'>The deletion test removes each input's top-attributed units and, separately, as "
                "many random ones: a ratio above 1 (its lower bound above 1) says the attributions point at what the "
                "model uses. Complete: the share of inputs whose scores add up to the probability change within the "
                "bound (enough integration steps). The scratch model is the anchor.</p>")


def line(record: dict) -> str:
    """One JSON line of `graft explain` output."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def _faith_rows(faith: dict) -> str:
    rows = []
    for name, f in faith.items():
        ratio = "n/a" if f["ratio"] is None else f"{f['ratio']:.2f}"
        lo, hi = (("n/a" if v is None else f"{v:.2f}") for v in f["ratio_ci"])
        d, c = f["difference"], f["completeness"]
        rows.append(f"<tr><td>{escape(name)}</td><td>{f['top_drop']:+.4f}</td><td>{f['random_drop']:+.4f}</td>"
                    f"<td>{ratio} [{lo}, {hi}]</td><td>{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
                    f"</td><td>{_pct(c['share'])} (median |delta| {c['median_abs_delta']})</td>"
                    f"<td>{f.get('concentration')}</td></tr>")
    return ("<table><tr><th>model</th><th>drop, top units deleted</th><th>drop, random units deleted</th>"
            "<th>ratio [95% CI]</th><th>difference [95% CI]</th><th>complete (|delta| &le; bound)</th>"
            "<th>share of |attribution| in the top units</th></tr>" + "".join(rows) + "</table>")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def shortcuts_html(result: dict, box_id: str = "") -> str:
    """A warning box listing the possible shortcuts in an explain result (empty when none); the term is glossed."""
    items = "".join(f"<li><b>{escape(c['kind'])}</b> carries {c['share']:.0%} of the evidence for "
                    f"<b>{escape(c['label'])}</b> ({c['inputs']} explained inputs; "
                    f"{escape(', '.join(c['units'][:6]))}): {escape(c['hint'])}</li>"
                    for c in result.get("shortcuts") or [])
    ident = f" id='{box_id}'" if box_id else ""
    return (f"<div class='warn'{ident}><b>Possible <a href='#{glossary.anchor('shortcut')}'>shortcut</a></b>"
            f"<ul>{items}</ul></div>") if items else ""


def section(result: dict, modality, items: dict[int, object]) -> str:
    """The explanations' HTML body: faithfulness, evidence per class, examples (`items`: test row -> input)."""
    f = result["faithfulness"]["model"]
    head = (f"<p>Model explained: <b>{escape(result['model'])}</b> ({escape(result['method'])}; {result['steps']} "
            f"steps) on {result['rows']['explained']} test rows, {result['rows']['misclassified']} of them "
            f"misclassified. Deleting the top {_pct(f['fraction'])} of each input's units by attribution drops the "
            f"predicted-class probability by {f['top_drop']:.4f} on average, a random {_pct(f['fraction'])} by "
            f"{f['random_drop']:.4f}.</p>")
    examples = []
    for r in result.get("examples", []):
        wrong = r.get("truth") not in (None, r["label"])
        item = items.get(r["row"], r["input"])
        examples.append(f"<div class='example{' wrong' if wrong else ''}'><small>test row {r['row']}: predicted "
                        f"<b>{escape(r['label'])}</b> ({r['probability']:.3f})"
                        f"{', truth ' + escape(str(r['truth'])) if wrong else ''}; delta {r['delta']:+.4f}</small>"
                        f"<br>{modality.explanation_html(item, r)}</div>")
    return (f"<div class='explain'><style>{CSS}</style>{head}{shortcuts_html(result)}<h3>Faithfulness</h3>"
            f"{_faith_rows(result['faithfulness'])}{FAITH_LEGEND}"
            f"<h3>Evidence per predicted class</h3>{modality.evidence_html(result['evidence'])}"
            f"<h3>Examples (misclassified first)</h3><p class='legend'>{LEGEND}</p>{''.join(examples)}</div>")


def render(result: dict, modality, items: dict[int, object]) -> str:
    """reports/explain.html."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>graft explanations: "
            f"{escape(result['model'])}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:24px auto}}"
            f"</style></head><body><h1>Explanations</h1><nav><a href='run.html'>run report</a> · "
            f"<a href='runs.html'>runs index</a> · <a href='validate/summary.html'>data validation</a></nav>"
            f"{section(result, modality, items)}{glossary.section(GLOSSED)}</body></html>\n")


def records_page(records: list[dict], modality, items: list, title: str) -> str:
    """`graft explain --html`: every input with its attributions."""
    body = "".join(f"<div class='example'><small>predicted <b>{escape(r['label'])}</b> ({r['probability']:.3f}); "
                   f"delta {r['delta']:+.4f}; {escape(str(r['input']))[:200]}</small><br>"
                   f"{modality.explanation_html(item, r)}</div>" for r, item in zip(records, items))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>body{{font-family:sans-serif;max-width:1100px;margin:24px auto}}</style></head><body>"
            f"<h1>{escape(title)}</h1><div class='explain'><style>{CSS}</style>{body}</div></body></html>\n")

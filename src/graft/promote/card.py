"""Markdown for people: the gate's verdict table and the model card registered with each version."""

from __future__ import annotations

from graft import modalities


def verdict_markdown(verdict: dict) -> str:
    """The verdict as a Markdown table (KFP UI, report)."""
    head = "**PASSED**: the candidate may be promoted" if verdict["passed"] else "**FAILED**: not promoted"
    lines = [head, "", "| check | value | 95% CI | threshold | passed | why |", "|---|---|---|---|---|---|"]
    for c in verdict["checks"]:
        ok = "yes" if c["passed"] else "no (decides, never refuses)" if c.get("blocking") is False else "NO"
        ci = f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]" if c.get("ci_low") is not None else ""
        why = c["why"].replace("|", "\\|")  # a pipe inside a cell would end it
        lines.append(f"| {c['name']} | {c['value']} | {ci} | {c['threshold']} | {ok} | {why} |")
    return "\n".join(lines) + "\n"


def _backbone(b: dict) -> str:
    layers = f", first {b['num_layers']} layers" if b.get("num_layers") else ""
    return f"{b.get('name', '?')} ({b.get('source', '?')}{layers})"


def _domains(dom: dict | None, meta: dict) -> list[str]:
    """The card's domain section: the method, what went on and why, both domains' scores and the skew."""
    if not dom:
        return []
    lines = ["", "## Domains and adaptation",
             f"- adaptation `{dom['method']}`; this package is the **{dom['chosen'].replace('_', '-')}** model "
             f"(its metadata: adapt `{meta.get('adapt', 'none')}`): {dom['why']}"]
    for domain in ("source", "target"):
        if dom.get(domain):
            lines.append(f"- {domain} test ({dom['rows'][domain]} rows), macro-F1: " + ", ".join(
                f"{m} {s['macro_f1']:.4f}" for m, s in dom[domain].items()))
    for name, sk in (dom.get("skew") or {}).items():
        lines.append(f"- skew on the {name} model's features: domain AUC {sk['auc']:.3f}, proxy A-distance "
                     f"{sk['proxy_a_distance']:.3f}")
    return lines


def _explanations(explanation: dict | None) -> list[str]:
    """The card's explanation section: what was explained, how faithful, the top evidence, where the page is."""
    if not explanation:
        return []
    lines = ["", "## Explanations",
             f"- {explanation['method']}, {explanation['steps']} steps, on {explanation['rows']['explained']} test "
             f"rows ({explanation['rows']['misclassified']} misclassified); the page and the JSON are registered "
             "with this version: [explanations/explain.html](explanations/explain.html), "
             "[explanations/explain.json](explanations/explain.json)"]
    for name, f in explanation["faithfulness"].items():
        lo, hi = f["ratio_ci"]
        lines.append(f"- deletion test, {name}: top {100 * f['fraction']:.0f}% units deleted drop the probability "
                     f"{f['top_drop']:.4f}, random ones {f['random_drop']:.4f} (ratio {f['ratio']}, 95% CI {lo} to "
                     f"{hi}); completeness {f['completeness']['share']} of items within "
                     f"|delta| <= {f['completeness']['bound']}")
    for label, top in explanation["evidence"].items():
        if isinstance(top, list):  # words (texts); images carry a mean heat-map, shown on the page
            lines.append(f"- top evidence for {label}: " + ", ".join(w["word"] for w in top[:8]))
    for cut in explanation.get("shortcuts") or []:
        lines.append(f"- **warning, possible shortcut:** {cut['kind']} carries {cut['share']:.0%} of the evidence "
                     f"for {cut['label']} ({cut['inputs']} explained inputs; {', '.join(cut['units'][:6])}): "
                     f"{cut['hint']}")
    return lines


def model_card(meta: dict, tags: dict, evaluation: dict, parity: dict, verdict: dict,
               explanation: dict | None = None) -> str:
    """The Markdown model card registered with each version.

    Data, backbone, metrics with intervals, the gate verdict, intended use and limits.
    """
    modality = modalities.get(meta.get("modality", "text"))
    size, limit = modality.card(meta)
    labels = meta.get("labels", [])
    lines = [f"# Model card: {meta.get('backbone', {}).get('name', '?')} fine-tuned for {', '.join(labels)}", "",
             "## Data",
             f"- data md5 {tags.get('graft.data_md5', '?')}, {meta.get('train_rows', '?')} training rows, "
             f"evaluated on {evaluation.get('finetune', {}).get('rows', '?')} held-out test rows",
             f"- code {tags.get('graft.git_commit', '?')}, params hash {tags.get('graft.params_hash', '?')}", "",
             "## Backbone and training",
             f"- {_backbone(meta.get('backbone', {}))}, `{meta.get('mode', 'finetune')}` mode, init "
             f"{meta.get('init_from', '?')}, best epoch {meta.get('best_epoch', '?')}, {size}",
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
    lines += _domains(evaluation.get("domains"), meta)
    lines += _explanations(explanation)
    if parity.get("fp32"):
        lines += ["", f"ONNX: fp32 accuracy {parity['fp32']['accuracy']:.4f} (agreement with PyTorch "
                  f"{parity['fp32']['agreement']:.4f}), int8 {parity['int8']['accuracy']:.4f}; "
                  f"{parity['size_mb']['fp32']} MB / {parity['size_mb']['int8']} MB"]
    lines += ["", "## Gate verdict", "", verdict_markdown(verdict) if verdict.get("checks") else
              ("PASSED" if verdict.get("passed") else "FAILED"),
              "## Intended use",
              f"Classifying {modality.noun} like its training data into {labels}, served "
              "from the ONNX package (`graft predict`).", "",
              "## Limits",
              "- Scores hold for data like the training version above; `graft validate` measures drift before a "
              "retrain, not while serving.",
              limit + "; labels outside the set above are never predicted.",
              "- Confidence intervals cover test-set sampling only, not a shift in the data."]
    cuts = (explanation or {}).get("shortcuts") or []
    lines += [f"- It may lean on a shortcut: {c['kind']} for {c['label']} ({c['share']:.0%} of that class's "
              f"evidence); inputs without it may be classified worse." for c in cuts]
    lines.append("")
    return "\n".join(lines)

"""The `explain` stage and `graft explain`: attributions for a trained model, and how faithful they are.

Integrated gradients (Captum) on the modality's units — words for texts, pixels for images — explain the model's
predicted class probability. The stage explains a seeded, stratified sample of test rows (misclassified ones
first) with the model that goes on (evaluate's `domains.chosen`), aggregates the evidence per class, and measures
faithfulness on every run: the deletion test and IG's completeness, for that model and for the scratch model as
an anchor. Explanations belong with the model (its card, the report, the registry): the serving protocol has none.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from graft import modalities
from graft.core import outputs, progress
from graft.core.artifacts import write_text
from graft.core.config import Config
from graft.core.errors import GraftError
from graft.data.tables import read_splits
from graft.explain import faithfulness, page
from graft.models.attribution import Attribution
from graft.models.classifier import predict_logits
from graft.serve.export import pick

__all__ = ["attribute", "explain", "inputs", "load", "page", "records", "run", "sample", "to_files"]

def load(folder: str | Path):
    """(modality, processor, model, metadata) of a trained torch model folder, or a one-line error."""
    modality, _ = modalities.of_model(load_meta_only(folder))
    processor, model, meta = modalities.load_model(folder)
    return modality, processor, model, meta


def attribute(explainer, items: list, steps: int, batch_size: int, targets: list[int] | None = None,
              desc: str = "explain") -> list[Attribution]:
    """Attributions of `items` (their predicted class unless `targets`), batch by batch, with a progress bar."""
    order = explainer.order(items)
    out: list[Attribution | None] = [None] * len(items)
    with progress.bar(total=len(items), desc=desc, unit="input") as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            done = explainer.attribute([items[i] for i in idx], steps,
                                       None if targets is None else [targets[i] for i in idx])
            for i, a in zip(idx, done):
                out[i] = a
            bar.update(len(idx))
    return out


def explain(folder: str | Path, items: list, steps: int, batch_size: int = 8
            ) -> tuple[list[Attribution], object, list[str]]:
    """Attributions of `items` by the model in `folder`, its modality and its labels (`graft explain`)."""
    if not items:
        raise GraftError("explain: no inputs to explain")
    modality, processor, model, meta = load(folder)
    explainer = modality.explainer(model, processor, batch_size)
    return attribute(explainer, items, steps, batch_size), modality, list(meta["labels"])


def inputs(folder: str | Path, path: str | Path | None, split_dir: str | Path | None = None,
           split: str | None = None, n: int = 20) -> tuple[list[str], list]:
    """(what each input is called, the inputs): lines of `path` (texts, or image paths), or rows of a split."""
    modality, _ = modalities.of_model(load_meta_only(folder))
    if path is not None:
        if split:
            raise GraftError("explain: give --input or --split, not both")
        try:
            lines = [ln.rstrip("\n") for ln in Path(path).read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise GraftError(f"{path}: cannot read the inputs ({getattr(exc, 'strerror', None) or exc})") from None
        numbered = [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip()]
        if not numbered:
            raise GraftError(f"{path}: no inputs (one text, or one image path, per line)")
        items = []
        for number, ln in numbered:
            try:
                items.append(modality.serving_input(ln)[0])
            except GraftError as exc:
                raise GraftError(f"{path} line {number}: {exc}") from None
        return [ln for _, ln in numbered], items
    if not (split and split_dir):
        raise GraftError("explain: give --input FILE, or --splits DIR with --split NAME")
    splits = read_splits(split_dir)
    if split not in splits:
        raise GraftError(f"{split_dir}: no split {split!r} (have {', '.join(splits)})")
    rows = splits[split].head(n)
    items = modality.examples(rows)
    return _shown(rows, list(range(len(rows))), items), items


def load_meta_only(folder: str | Path) -> Path:
    """`folder`, once it is known to be a trained torch model folder (the same errors as `load`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GraftError(f"{folder}: no such model folder (give a folder written by `graft train`, e.g. "
                         f"models/finetune)")
    if (folder / "model.onnx").is_file() and not (folder / modalities.WEIGHTS).is_file():
        raise GraftError(f"{folder}: an ONNX package; explanations need the gradients of the torch model it was "
                         f"exported from (e.g. models/finetune)")
    modalities.of_model(folder)
    if not (folder / modalities.WEIGHTS).is_file():
        raise GraftError(f"{folder}: no {modalities.WEIGHTS}: not a trained model folder")
    return folder


def to_files(folder: str | Path, path: str | Path | None, split_dir: str | Path | None, split: str | None, n: int,
             steps: int, batch_size: int, out: str | Path | None = None, html: str | Path | None = None) -> list[dict]:
    """`graft explain`: explain inputs (a file's lines, or a split's first rows); JSON lines to `out`, a page."""
    shown, items = inputs(folder, path, split_dir, split, n)
    attrs, modality, labels = explain(folder, items, steps, batch_size)
    recs = records(modality, attrs, shown, labels)
    if out:
        write_text(out, "".join(page.line(r) for r in recs))
    if html:
        write_text(html, page.records_page(recs, modality, items, f"explanations: {folder}"))
    return recs


def records(modality, attributions: list[Attribution], inputs: list, labels: list[str], truth: list | None = None
            ) -> list[dict]:
    """JSON lines: {input, label, probability, attributions, delta} (+ target id, and the true label if known)."""
    out = []
    for i, (a, shown) in enumerate(zip(attributions, inputs)):
        r = {"input": shown, "label": labels[a.target], "probability": round(a.probability, 5),
             "attributions": modality.explained(a), "delta": round(a.delta, 6), "target": a.target}
        if truth is not None:
            r["truth"] = truth[i]
        out.append(r)
    return out


def sample(test: pd.DataFrame, predicted: np.ndarray, classes: list[str], n: int, seed: int) -> list[int]:
    """Row positions to explain: misclassified rows first (at most a quarter of n), the rest stratified by label."""
    rng = np.random.default_rng(seed)
    truth = test["label"].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    wrong = np.flatnonzero(predicted != truth)
    picked = list(rng.permutation(wrong)[: min(len(wrong), n // 4)])
    rest = np.setdiff1d(np.arange(len(test)), picked)
    todo = n - len(picked)
    if todo >= len(rest):
        return sorted(int(i) for i in [*picked, *rest])
    share = pd.Series(truth[rest]).value_counts(normalize=True)
    for c, frac in share.items():
        pool = rest[truth[rest] == c]
        picked += list(rng.permutation(pool)[: int(round(frac * todo))])
    extra = np.setdiff1d(rest, picked)
    picked += list(rng.permutation(extra)[: max(0, n - len(picked))])
    return sorted(int(i) for i in picked[:n])


def anchor_rows(n: int, size: int | None, seed: int) -> list[int]:
    """Which of the `n` explained inputs the scratch anchor explains: a seeded subset of `size` (all when None)."""
    if size is None or size >= n:
        return list(range(n))
    return sorted(int(i) for i in np.random.default_rng(seed + 1).permutation(n)[:size])


def faithful(explainer, items: list, attributions: list[Attribution], cfg: Config, seed: int) -> dict:
    """The deletion test, completeness and concentration of one model's attributions."""
    e = cfg.explain
    return {**faithfulness.deletion(explainer, items, attributions, e.fraction, seed,
                                    cfg.evaluate.bootstrap_resamples),
            "completeness": faithfulness.completeness(attributions, e.completeness_bound),
            "concentration": faithfulness.concentration(attributions, e.fraction)}


def run(split_dir: str | Path, finetune: str | Path, scratch: str | Path, cfg: Config, out: str | Path,
        html: str | Path, adapted: str | Path | None = None, evaluation: str | Path | None = None,
        lines: str | Path | None = None) -> dict:
    """The stage: explain a test sample with the model that goes on (and scratch), measure, write JSON and HTML."""
    started, e = time.perf_counter(), cfg.explain
    seed = cfg.seed if e.seed is None else e.seed
    folder, why = pick(finetune, adapted, evaluation)
    chosen = "adapted" if adapted and str(folder) == str(adapted) else "source_only"
    modality, processor, model, meta = load(folder)
    test, classes = read_splits(split_dir)["test"], list(meta["labels"])
    items = modality.examples(test)
    predicted = predict_logits(model, processor, items, cfg.evaluate.batch_size).argmax(1)
    rows = sample(test, predicted, classes, e.n, seed)
    chunk = [items[i] for i in rows]
    shown = _shown(test, rows, chunk)
    truth = test["label"].astype(str).iloc[rows].tolist()
    explainer = modality.explainer(model, processor, e.batch_size)
    attrs = attribute(explainer, chunk, e.steps, e.batch_size, desc="explain: model")
    recs = records(modality, attrs, shown, classes, truth)
    result = {"model": chosen, "folder": str(folder), "why": why, "method": explainer.method,
              "modality": modality.name, "steps": e.steps, "seed": seed, "labels": classes,
              "rows": {"test": len(test), "explained": len(rows),
                       "misclassified": int(sum(r["label"] != r["truth"] for r in recs))},
              "faithfulness": {"model": faithful(explainer, chunk, attrs, cfg, seed)},
              "evidence": modality.evidence(recs, classes),
              "shortcuts": modality.shortcuts(recs, classes, e.shortcut_share)}
    if e.scratch:
        s_modality, s_processor, s_model, _ = load(scratch)
        s_explainer = s_modality.explainer(s_model, s_processor, e.batch_size)
        anchor = anchor_rows(len(chunk), e.scratch_n, seed)
        s_items = [chunk[i] for i in anchor]
        s_attrs = attribute(s_explainer, s_items, e.steps, e.batch_size, desc="explain: scratch")
        result["faithfulness"]["scratch"] = faithful(s_explainer, s_items, s_attrs, cfg, seed)
    picks = sorted(range(len(recs)), key=lambda i: (recs[i]["label"] == recs[i]["truth"], i))[: e.examples]
    result["examples"] = [{**recs[i], "row": rows[i]} for i in picks]
    result["seconds"] = round(time.perf_counter() - started, 2)
    result = outputs.write(out, "explain", result)
    write_text(html, page.render(result, modality, {rows[i]: chunk[i] for i in picks}))
    if lines:
        write_text(lines, "".join(page.line(r) for r in recs))
    return result


def _shown(test: pd.DataFrame, rows: list[int], items: list) -> list[str]:
    """What a record calls each input: the input itself when it is text, else its file path, else its test row."""
    paths = test["path"].iloc[rows].tolist() if "path" in test.columns else [None] * len(rows)
    return [x if isinstance(x, str) else p if isinstance(p, str) else f"test row {i}"
            for x, p, i in zip(items, paths, rows)]

"""Drift of a data version against the previous validated one: label mix, the modality's shape measure, vocabulary.

Every validated version leaves a profile (label counts, a text-length histogram, word counts) in a profile store
(`validate.profile_dir`); the next version is compared with the newest stored profile of a *different* version.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import pandas as pd

from graft.core.artifacts import read_json, write_json
from graft.core.config import DriftBound, DriftConfig, SkewConfig
from graft.modalities.base import Modality

VOCAB_SIZE = 50_000


def _histogram(values, edges: list[float]) -> list[int]:
    hist = [0] * len(edges)
    for n in values:
        hist[max(i for i, edge in enumerate(edges) if n >= edge)] += 1
    return hist


def profile(tables: dict[str, pd.DataFrame], modality: Modality) -> dict:
    """The profile of one data version (all its tables together).

    The shape measure is the modality's (text lengths, image brightness), and so is the vocabulary (none for
    images).
    """
    column = modality.column
    df = pd.concat([t[[column, "label"]] for t in tables.values()], ignore_index=True)
    items = df[column].tolist()
    keys = pd.Series(modality.identity(items), dtype=object).astype(str)
    hist = _histogram(modality.drift_values(items), modality.drift_edges)
    vocab = modality.vocabulary(items)
    labels = df["label"].astype(str)
    digest = hashlib.md5("\x1f".join(sorted(keys + "\x1e" + labels)).encode()).hexdigest()
    return {"id": digest, "created": time.time(), "rows": len(df), "labels": labels.value_counts().to_dict(),
            "measure": modality.drift_measure, "length_hist": hist, "vocab": dict(vocab.most_common(VOCAB_SIZE))}


def _shares(counts: dict[str, int] | list[int], keys) -> list[float]:
    get = counts.get if isinstance(counts, dict) else counts.__getitem__
    total = sum(get(k) or 0 for k in keys) or 1
    return [(get(k) or 0) / total for k in keys]


def js_divergence(p: dict[str, int], q: dict[str, int]) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) between two label count tables."""
    keys = sorted(set(p) | set(q))
    a, b = _shares(p, keys), _shares(q, keys)
    m = [(x + y) / 2 for x, y in zip(a, b)]

    def kl(u: list[float]) -> float:
        return sum(x * math.log2(x / y) for x, y in zip(u, m) if x > 0)

    return (kl(a) + kl(b)) / 2


def psi(current: list[int], reference: list[int], eps: float = 1e-4) -> float:
    """Population stability index between two histograms on the same bins."""
    idx = range(len(current))
    a, b = _shares(current, idx), _shares(reference, idx)
    return sum((x - y) * math.log((x + eps) / (y + eps)) for x, y in zip(a, b))


def oov_rate(current: dict[str, int], reference: dict[str, int]) -> float:
    """Share of the current version's word occurrences that the reference never saw."""
    total = sum(current.values()) or 1
    return sum(n for w, n in current.items() if w not in reference) / total


def _status(value: float, bound: DriftBound) -> str:
    return "fail" if value > bound.fail else "warn" if value > bound.warn else "ok"


def compare(cur: dict, ref: dict | None, cfg: DriftConfig) -> list[dict]:
    """One entry per drift measure: name, value, warn and fail thresholds, status, and a sentence."""
    if ref is None:
        return [{"name": "drift", "value": None, "warn": None, "fail": None, "status": "ok",
                 "why": "first validated version: no reference to compare with"}]
    if cur.get("measure", "text lengths") != ref.get("measure", "text lengths"):
        return [{"name": "drift", "value": None, "warn": None, "fail": None, "status": "ok",
                 "why": f"the previous version ({ref['id'][:8]}) holds another modality: no comparison"}]
    measures = [
        ("label_js", js_divergence(cur["labels"], ref["labels"]), cfg.label_js, "label mix"),
        ("length_psi", psi(cur["length_hist"], ref["length_hist"]), cfg.length_psi, cur.get("measure", "text lengths")),
    ]
    if cur["vocab"]:
        measures.append(("oov_rate", oov_rate(cur["vocab"], ref["vocab"]), cfg.oov_rate, "unseen words"))
    out = []
    for name, value, bound, what in measures:
        status = _status(value, bound)
        out.append({"name": name, "value": round(value, 4), "warn": bound.warn, "fail": bound.fail,
                    "status": status, "why": f"{what}: {name}={value:.4f} (validate.drift.{name}: warn > {bound.warn}, "
                                             f"fail > {bound.fail}) against version {ref['id'][:8]}"})
    return out


def reference(store: str | Path, current_id: str) -> dict | None:
    """The newest stored profile of another data version, or None."""
    profiles = [read_json(p) for p in Path(store).glob("*.json")] if Path(store).is_dir() else []
    others = [p for p in profiles if p["id"] != current_id]
    return max(others, key=lambda p: p["created"]) if others else None


def save(prof: dict, store: str | Path) -> Path:
    """Keep a validated version's profile (one file per version; re-validating a version refreshes it)."""
    path = Path(store) / f"{prof['id']}.json"
    write_json(path, prof)
    return path


def skew(train: list, target: list, modality: Modality, cfg: SkewConfig) -> list[dict]:
    """Train/serving skew without labels: the training split's inputs against the target domain's, same measures.

    The modality's shape measure (text lengths, image brightness) as a PSI and, for texts, the share of target
    words the training texts never had; entries as `compare` returns them.
    """
    edges = modality.drift_edges
    measures = [("skew_length_psi", psi(_histogram(modality.drift_values(target), edges),
                                        _histogram(modality.drift_values(train), edges)),
                 cfg.length_psi, modality.drift_measure)]
    vocab = modality.vocabulary(target)
    if vocab:
        measures.append(("skew_oov_rate", oov_rate(vocab, modality.vocabulary(train)), cfg.oov_rate,
                         "target words unseen in training"))
    return [{"name": name, "value": round(value, 4), "warn": bound.warn, "fail": bound.fail,
             "status": _status(value, bound),
             "why": f"{what}: {name}={value:.4f} (validate.skew.{name.removeprefix('skew_')}: warn > {bound.warn}, "
                    f"fail > {bound.fail}), training split vs data.target"} for name, value, bound, what in measures]

"""Explaining a text classifier: integrated gradients on the word-embedding layer, word pieces merged into words.

The baseline is the same sequence with every word piece replaced by [PAD] and [CLS]/[SEP] kept (attention mask
unchanged), so a "deleted" word is a padded one, in the attributions and in the deletion test alike.
"""

from __future__ import annotations

import re
from html import escape

import numpy as np
import torch

from graft.models.attribution import Attribution, Explainer
from graft.models.classifier import batches


class TextExplainer(Explainer):
    """LayerIntegratedGradients on `encoder.embeddings.word_embeddings` of a TextClassifier."""

    method = ("layer integrated gradients on the word embeddings against [CLS] [PAD]... [SEP], word pieces summed "
              "into words")

    def order(self, items: list) -> list[int]:
        """By token count: a batch pads to its longest text, and every padded position costs `steps` passes."""
        lengths = [len(ids) for ids in self.processor.ids([str(t) for t in items])]
        return sorted(range(len(items)), key=lengths.__getitem__)

    def _encode(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], list[list[tuple[int, int, int]]]]:
        """Padded inputs and, per text, its words as (first piece, last piece + 1, character span) triples."""
        tok = self.processor.tokenizer
        enc = tok(texts, padding=True, truncation=True, max_length=self.processor.max_length,
                  return_offsets_mapping=True, return_tensors="pt")
        words = []
        for row, text in enumerate(texts):
            spans: dict[int, list[int]] = {}
            for pos, word in enumerate(enc.word_ids(row)):
                if word is not None:
                    spans.setdefault(word, []).append(pos)
            offsets = enc["offset_mapping"][row]
            words.append([(p[0], p[-1] + 1, (int(offsets[p[0]][0]), int(offsets[p[-1]][1])))
                          for _, p in sorted(spans.items())])
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}, words

    def _baseline(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        special = torch.tensor(self.processor.tokenizer.all_special_ids)
        pad = self.processor.tokenizer.pad_token_id
        keep = torch.isin(ids, special) & (mask > 0) & (ids != pad)
        return torch.where(keep, ids, torch.full_like(ids, pad))

    def attribute(self, items: list, steps: int, targets: list[int] | None = None) -> list[Attribution]:
        """Per-word attributions (sum of the word's pieces) of each text's target class probability."""
        from captum.attr import LayerIntegratedGradients

        model = self.model
        lig = LayerIntegratedGradients(lambda ids, mask: self.probabilities_of({"input_ids": ids,
                                                                                "attention_mask": mask}),
                                       model.encoder.embeddings.word_embeddings)
        out: list[Attribution] = []
        for start, chunk in zip(range(0, len(items), self.batch_size), batches(items, self.batch_size)):
            texts = [str(t) for t in chunk]
            inputs, words = self._encode(texts)
            ids, mask = inputs["input_ids"].to(self.device), inputs["attention_mask"].to(self.device)
            with torch.no_grad():
                probs = self.probabilities_of({"input_ids": ids, "attention_mask": mask})
            target = (probs.argmax(1) if targets is None
                      else torch.tensor(targets[start:start + len(chunk)], device=self.device))
            attr, delta = lig.attribute(ids, baselines=self._baseline(ids, mask), target=target,
                                        additional_forward_args=(mask,), n_steps=steps,
                                        internal_batch_size=self.batch_size * steps,
                                        return_convergence_delta=True)
            per_piece = attr.sum(-1).detach().float().cpu().numpy()
            for row, text in enumerate(texts):
                t = int(target[row])
                scores = np.array([per_piece[row, a:b].sum() for a, b, _ in words[row]], dtype=np.float32)
                out.append(Attribution(t, float(probs[row, t]), scores, float(delta[row]),
                                       [text[s:e] for _, _, (s, e) in words[row]]))
        return out

    @torch.no_grad()
    def delete(self, items: list, masks: list[np.ndarray]) -> np.ndarray:
        """Probabilities with the masked words' pieces replaced by [PAD] (special tokens and the mask kept)."""
        pad, out = self.processor.tokenizer.pad_token_id, []
        for start, chunk in zip(range(0, len(items), self.batch_size), batches(items, self.batch_size)):
            inputs, words = self._encode([str(t) for t in chunk])
            ids = inputs["input_ids"].clone()
            for row, spans in enumerate(words):
                for (a, b, _), gone in zip(spans, masks[start + row]):
                    if gone:
                        ids[row, a:b] = pad
            out.append(self.probabilities_of({"input_ids": ids.to(self.device),
                                              "attention_mask": inputs["attention_mask"].to(self.device)}).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.model.head.out_features), np.float32)


def as_json(attribution: Attribution) -> list:
    """[[word, score], ...] in reading order."""
    return [[w, round(float(s), 5)] for w, s in zip(attribution.units or [], attribution.scores)]


def evidence(records: list[dict], classes: list[str], top: int = 12) -> dict:
    """Per predicted class, the words with the most attribution toward it, summed over the explained texts."""
    out = {}
    for ci, name in enumerate(classes):
        total: dict[str, list[float]] = {}
        for r in records:
            if r["target"] == ci:
                for word, score in r["attributions"]:
                    if any(ch.isalnum() for ch in word):
                        total.setdefault(word.lower(), []).append(score)
        ranked = sorted(total.items(), key=lambda kv: -sum(kv[1]))[:top]
        out[name] = [{"word": w, "total": round(sum(v), 4), "count": len(v)} for w, v in ranked]
    return out


ARTEFACTS = {  # what a text's shortcut looks like: a pattern, and what to do about it
    "url": (re.compile(r"(?:https?://|www\.)\S+"), "the model leans on links: strip or replace URLs (e.g. with "
            "a URL token) in data.raw and in what is served, or check that links carry the class in production too"),
    "handle": (re.compile(r"@\w+"), "the model leans on @mentions: check they mean the same in production, or "
               "mask them"),
    "markup": (re.compile(r"<[^>]{1,40}>|&[a-z]{2,6};|&#\d+;"), "the model leans on markup or HTML entities: "
               "unescape or strip them when preparing the data"),
}


def _units_in(text: str, words: list) -> list[tuple[str, float, int]]:
    """(word, score, character offset) of each unit, found in reading order in `text` (-1 when not found)."""
    out, cursor = [], 0
    for word, score in words:
        at = text.find(word, cursor) if word else -1
        if at >= 0:
            cursor = at + len(word)
        out.append((word, score, at))
    return out


def shortcuts(records: list[dict], classes: list[str], share: float) -> list[dict]:
    """Artefact kinds (URLs, @handles, markup) holding >= `share` of a class's positive attribution, largest first."""
    found = []
    for ci, name in enumerate(classes):
        total, by_kind = 0.0, {k: {} for k in ARTEFACTS}
        seen = {k: 0 for k in ARTEFACTS}
        for r in records:
            if r["target"] != ci:
                continue
            text = str(r["input"])
            spans = {k: [m.span() for m in pattern.finditer(text)] for k, (pattern, _) in ARTEFACTS.items()}
            hit = set()
            for word, score, at in _units_in(text, r["attributions"]):
                total += max(score, 0.0)
                for kind, ranges in spans.items():
                    if at >= 0 and any(a <= at < b for a, b in ranges):
                        by_kind[kind][word.lower()] = by_kind[kind].get(word.lower(), 0.0) + max(score, 0.0)
                        hit.add(kind)
                        break
            for kind in hit:
                seen[kind] += 1
        for kind, words in by_kind.items():
            held = sum(words.values()) / total if total > 0 else 0.0
            if held >= share:
                top = [w for w, v in sorted(words.items(), key=lambda kv: -kv[1]) if v > 0][:6]
                found.append({"label": name, "kind": kind, "share": round(held, 4), "inputs": seen[kind],
                              "units": top, "hint": ARTEFACTS[kind][1]})
    return sorted(found, key=lambda f: -f["share"])


def _shade(score: float, scale: float) -> str:
    a = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    rgb = "220,60,40" if score >= 0 else "40,90,220"
    return f"background:rgba({rgb},{a:.2f})"


def record_html(item, record: dict) -> str:
    """The text with each word shaded by its score (red: toward the class, blue: against)."""
    words = record["attributions"]
    scale = max((abs(s) for _, s in words), default=0.0)
    return " ".join(f'<span class="tok" style="{_shade(s, scale)}" title="{s:+.4f}">{escape(w)}</span>'
                    for w, s in words)


def evidence_html(evidence_by_class: dict) -> str:
    """One list per class: its top words, bar length by total attribution."""
    parts = []
    for name, words in evidence_by_class.items():
        peak = max((w["total"] for w in words), default=0.0) or 1.0
        rows = "".join(f'<tr><td>{escape(w["word"])}</td><td><span class="bar" style="width:'
                       f'{max(2, int(120 * w["total"] / peak))}px"></span> {w["total"]:+.3f} '
                       f'<small>({w["count"]}x)</small></td></tr>' for w in words)
        parts.append(f'<div class="evidence"><h4>{escape(name)}</h4><table>{rows}</table></div>')
    return "".join(parts)

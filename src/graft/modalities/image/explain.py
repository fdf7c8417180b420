"""Explaining an image classifier: integrated gradients on the pixels against a black image.

Black (pixel value 0, (0 - 127) / 128 after scaling) is the baseline and what a deleted pixel becomes; on
Fashion-MNIST it is the background. Scores are summed over the three channels: one per pixel at the model's input
size.
"""

from __future__ import annotations

from html import escape

import numpy as np
import torch

from graft.modalities.image.model import INPUT
from graft.models.attribution import Attribution, Explainer
from graft.models.classifier import batches

BLACK = -127.0 / 128.0
PASS = 64  # images per integrated-gradients pass: larger passes ran 4x slower per image here (memory bound)


class ImageExplainer(Explainer):
    """IntegratedGradients on `pixel_values` of an ImageClassifier."""

    method = "integrated gradients on the pixels against a black image, channels summed"

    def attribute(self, items: list, steps: int, targets: list[int] | None = None) -> list[Attribution]:
        """A per-pixel heat-map of each image's target class probability."""
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(lambda x: self.probabilities_of({INPUT: x}))
        out: list[Attribution] = []
        for start, chunk in zip(range(0, len(items), self.batch_size), batches(items, self.batch_size)):
            x = self.processor(chunk)[INPUT].to(self.device)
            with torch.no_grad():
                probs = self.probabilities_of({INPUT: x})
            target = (probs.argmax(1) if targets is None
                      else torch.tensor(targets[start:start + len(chunk)], device=self.device))
            attr, delta = ig.attribute(x, baselines=torch.full_like(x, BLACK), target=target, n_steps=steps,
                                       internal_batch_size=min(self.batch_size * steps, PASS),
                                       return_convergence_delta=True)
            maps = attr.sum(1).detach().float().cpu().numpy()
            out += [Attribution(int(target[r]), float(probs[r, int(target[r])]), maps[r], float(delta[r]))
                    for r in range(len(chunk))]
        return out

    @torch.no_grad()
    def delete(self, items: list, masks: list[np.ndarray]) -> np.ndarray:
        """Probabilities with the masked pixels (all channels) set to black."""
        out = []
        for start, chunk in zip(range(0, len(items), self.batch_size), batches(items, self.batch_size)):
            x = self.processor(chunk)[INPUT]
            gone = torch.from_numpy(np.stack([np.asarray(m, bool).reshape(x.shape[-2:])
                                              for m in masks[start:start + len(chunk)]]))
            x = x.masked_fill(gone[:, None], BLACK)
            out.append(self.probabilities_of({INPUT: x.to(self.device)}).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.model.head.out_features), np.float32)


GRID = 32  # heat-maps are stored pooled to GRID x GRID (sums of blocks of the input size / GRID pixels)


def as_json(attribution: Attribution) -> list:
    """The heat-map pooled to at most GRID x GRID (block sums), rows of scores."""
    m = attribution.scores
    f = max(1, m.shape[0] // GRID)
    h, w = m.shape[0] // f * f, m.shape[1] // f * f
    pooled = m[:h, :w].reshape(h // f, f, w // f, f).sum((1, 3))
    return np.round(pooled, 6).tolist()


def evidence(records: list[dict], classes: list[str]) -> dict:
    """Per predicted class, the mean heat-map of the explained images (and how many)."""
    out = {}
    for ci, name in enumerate(classes):
        maps = [np.asarray(r["attributions"]) for r in records if r["target"] == ci]
        out[name] = {"count": len(maps), "mean": np.round(np.mean(maps, 0), 6).tolist() if maps else None}
    return out


BORDER = 0.125  # the band along each edge, as a share of the side: 44% of the area


def shortcuts(records: list[dict], classes: list[str], share: float) -> list[dict]:
    """The border band, for a class whose positive attribution it holds more of than its area plus `share`.

    Objects sit in the middle of a well-framed image; evidence piled on the frame (a watermark, a scanner edge, a
    padding colour) is a shortcut the model may not find in production.
    """
    found = []
    for ci, name in enumerate(classes):
        maps = [np.clip(np.asarray(r["attributions"], np.float64), 0, None) for r in records if r["target"] == ci]
        if not maps:
            continue
        total = np.sum(maps, 0)
        h, w = total.shape
        b = max(1, int(round(BORDER * min(h, w))))
        inner = np.zeros_like(total, bool)
        inner[b:h - b, b:w - b] = True
        area = 1 - inner.mean()
        held = float(total[~inner].sum() / total.sum()) if total.sum() > 0 else 0.0
        if held >= area + share:
            found.append({"label": name, "kind": "border", "share": round(held, 4), "inputs": len(maps),
                          "units": [f"outer {b} of {h} cells on each edge ({area:.0%} of the area)"],
                          "hint": "the model leans on the image's frame: check crops, padding and watermarks in "
                                  "the training images against production"})
    return sorted(found, key=lambda f: -f["share"])


def _png(image: np.ndarray | None, heat: np.ndarray, size: int = 112) -> str:
    """A data: URI of the heat-map (red: toward the class, blue: against) over the grey image, if any."""
    import base64
    import io

    from PIL import Image

    scale = float(np.abs(heat).max()) or 1.0
    h = np.asarray(Image.fromarray((heat / scale).astype(np.float32)).resize((size, size), Image.BILINEAR))
    base = (np.full((size, size), 255.0) if image is None else
            np.asarray(Image.fromarray(image).convert("L").resize((size, size), Image.BILINEAR), np.float32))
    rgb = np.repeat(base[..., None], 3, -1) * 0.6
    alpha = np.clip(np.abs(h), 0, 1)[..., None]
    colour = np.where(h[..., None] >= 0, np.array([230.0, 50, 30]), np.array([30.0, 90, 230]))
    out = (rgb * (1 - alpha) + colour * alpha).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def record_html(item, record: dict) -> str:
    """The image under its heat-map."""
    from graft.modalities.image.pixels import decode

    uri = _png(decode(item), np.asarray(record["attributions"]))
    return f'<img class="heat" alt="attribution heat-map" src="{uri}">'


def evidence_html(evidence_by_class: dict) -> str:
    """The mean heat-map of each class."""
    cells = "".join(f'<figure class="evidence"><img class="heat" alt="mean heat-map of {escape(n)}" '
                    f'src="{_png(None, np.asarray(e["mean"]))}"><figcaption>{escape(n)} ({e["count"]})</figcaption>'
                    f'</figure>' for n, e in evidence_by_class.items() if e["mean"] is not None)
    return f'<div class="heats">{cells}</div>'

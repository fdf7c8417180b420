"""The image modality: one example is an encoded image file; the backbone is EfficientNet-Lite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graft.core.config import Candidate, Config, DataConfig, ValidateConfig
from graft.core.errors import GraftError
from graft.modalities.base import Modality, TooLarge
from graft.modalities.image import data, pixels

BRIGHTNESS_EDGES = [0, 32, 64, 96, 128, 160, 192, 224]  # mean pixel value of an image
CALIBRATION_BATCH = 16


class ImageModality(Modality):
    """Images: decoded and scaled by Pillow/numpy alike in training and serving, a small CNN as the baseline."""

    name = "image"
    noun = "images"
    default_data = pixels.FASHION_NAME
    risks = data.RISKS
    drift_measure = "image brightness"
    drift_edges = BRIGHTNESS_EDGES
    adaptations = ("adabn", "dann", "self_training")
    column_key = "image_column"  # the data.* setting naming its column in a user's file
    adaptation_note = "tapt is masked-language-model training of a text encoder"

    def read_table(self, path: Path, cfg: DataConfig) -> pd.DataFrame:
        """A folder of class folders, or a Parquet table of image bytes: (image, label, path[, split])."""
        return pixels.read_table(path, cfg.image_column, cfg.label_column, cfg.split_column)

    def detect(self, path: Path) -> tuple[pd.DataFrame, list[str]] | None:
        """A folder of class folders (its `image` column), or a Parquet table and its columns of encoded bytes."""
        return pixels.detect(path)

    def materialize(self, dest: Path) -> Path:
        """Write Fashion-MNIST (Debian's dataset-fashion-mnist) as a Parquet table of PNGs to `dest`."""
        return pixels.materialize(dest)

    def clean(self, df: pd.DataFrame) -> pd.DataFrame:
        """Drop exact copies of a file."""
        return data.clean(df)

    def identity(self, items: list) -> list[str]:
        """The content hash of each file."""
        return [pixels.digest(b) for b in items]

    def derived(self, df: pd.DataFrame) -> pd.DataFrame:
        """One decode per image: decodable, sides, channels, dtype, pixel range, content hash."""
        return data.derived(df)

    def expectations(self, v: ValidateConfig) -> list[Any]:
        """Decodable, size, channels, dtype, not blank, exact duplicates."""
        return data.expectations(v)

    def message(self, check: str, result: dict, v: ValidateConfig, table: pd.DataFrame) -> str | None:
        """The image checks' detail lines (they name the files)."""
        return data.message(check, result, v, table)

    def drift_values(self, items: list) -> list[float]:
        """Mean brightness per image."""
        return [pixels.inspect(b).get("brightness", 0.0) for b in items]

    def target_problem(self, target: pd.DataFrame, where: str, source: pd.DataFrame) -> str | None:
        """Target images must decode and have a side within the training images' range."""
        return data.target_problem(target, where, source)

    def build(self, candidate: Candidate, tasks: dict[str, int], init_from: str, cfg: Config):
        """The pixel processor at train.image_size and EfficientNet-Lite with one head."""
        from graft.modalities.image.model import build

        if len(tasks) > 1:
            raise GraftError("multi-task training is available for text backbones only")
        t = cfg.train
        return build(candidate, next(iter(tasks.values())), init_from, t.dropout, t.image_size)

    def save(self, model, processor, out: Path, meta: dict) -> dict:
        """Only the input size: the architecture comes from the backbone entry."""
        return {"image_size": model.image_size}

    def load(self, folder: Path, meta: dict):
        """Rebuild the architecture of the saved backbone."""
        from graft.modalities.image.model import reload

        return reload(meta)

    def encode(self, processor, items: list):
        """All pixels of the split, decoded once."""
        from graft.models.classifier import Tensors

        return Tensors("pixel_values", processor(items)["pixel_values"])

    def frozen_features(self, model, processor, items: list, candidate: Candidate, cfg: Config, pretrained: bool,
                        hw) -> tuple[Any, int]:
        """Pooled features of the frozen trunk (eval mode: batch norm uses its running statistics)."""
        from graft.models.classifier import pooled

        return pooled(model, self.encode(processor, items), hw.device, hw.autocast), len(items)

    def score_backbones(self, group: list[Candidate], items: list, cfg: Config, cache) -> tuple[list[dict], int]:
        """Each image backbone on its own."""
        from graft.modalities.image.model import score_backbones

        return score_backbones(group, items, cfg)

    def onnx_inputs(self, model, processor) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        """Two blank images at the model's size; the batch axis is dynamic."""
        import torch

        size = model.image_size
        return {"pixel_values": torch.zeros(2, 3, size, size)}, {"pixel_values": {0: "batch"}}

    def calibration(self, processor, items: list) -> list[dict] | None:
        """Static int8 (QDQ) from validation images: dynamic int8 turns convolutions into ConvInteger (-13 points)."""
        values = processor(items)["pixel_values"].numpy()
        return [{"pixel_values": values[i:i + CALIBRATION_BATCH]} for i in range(0, len(values), CALIBRATION_BATCH)]

    def serving(self, folder: Path, meta: dict) -> Callable[[list], list[tuple[np.ndarray, dict]]]:
        """Pillow + numpy, the same function training uses; images are all one size, so one call for all."""
        size = int(meta["image_size"])
        return lambda blobs: [(np.arange(len(blobs)), {"pixel_values": pixels.pixels(blobs, size)})]

    def serving_input(self, line: str) -> tuple[Any, dict]:
        """An input line names an image file: its bytes, checked to decode (one clear error if not)."""
        try:
            blob = Path(line).read_bytes()
        except OSError as exc:
            raise GraftError(f"{line}: cannot read: {exc.strerror}") from None
        problem = pixels.inspect(blob)["error"]
        if problem:
            raise GraftError(f"{line}: not a decodable image ({problem})")
        return blob, {"path": line}

    wire_name = "image"
    wire_base64 = True

    def probe(self, meta: dict) -> list:
        """A mid-grey PNG at the package's input size."""
        import io

        from PIL import Image

        out = io.BytesIO()
        Image.new("L", (int(meta["image_size"]),) * 2, 128).save(out, format="PNG")
        return [out.getvalue()]

    def wire_item(self, blob: bytes, limits) -> Any:
        """An encoded image file (PNG, JPEG, ...) of at most `max_image_bytes`, checked to decode."""
        if len(blob) > limits.max_image_bytes:
            raise TooLarge(f"an image of {len(blob)} bytes is over serve.max_image_bytes ({limits.max_image_bytes})")
        problem = pixels.inspect(blob)["error"]
        if problem:
            raise GraftError(f"an image does not decode ({problem})")
        return blob

    def classical(self, train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int
                  ) -> tuple[Any, str]:
        """A small CNN from scratch at native resolution."""
        from graft.modalities.image.classical import native_side, small_cnn

        return small_cnn(train, test, classes, seed), f"small CNN at {native_side(train['image'].tolist())} px"

    def explainer(self, model, processor, batch_size: int):
        """Integrated gradients on the pixels against a black image."""
        from graft.modalities.image.explain import ImageExplainer

        return ImageExplainer(model, processor, batch_size)

    def explained(self, attribution) -> Any:
        """The heat-map pooled to 32 x 32."""
        from graft.modalities.image.explain import as_json

        return as_json(attribution)

    def evidence(self, records: list[dict], classes: list[str]) -> dict:
        """Mean heat-map per predicted class."""
        from graft.modalities.image import explain

        return explain.evidence(records, classes)

    def shortcuts(self, records: list[dict], classes: list[str], share: float) -> list[dict]:
        """A border band that carries far more of a class's evidence than its area: the model looks at the frame."""
        from graft.modalities.image import explain

        return explain.shortcuts(records, classes, share)

    def explanation_html(self, item, record: dict) -> str:
        """The image under its heat-map."""
        from graft.modalities.image.explain import record_html

        return record_html(item, record)

    def evidence_html(self, evidence: dict) -> str:
        """Mean heat-maps per class."""
        from graft.modalities.image.explain import evidence_html

        return evidence_html(evidence)

    def loading(self, meta: dict) -> tuple[str, str]:
        """With graft (its EfficientNet in PyTorch), or the ONNX package without it."""
        size = meta.get("image_size", "?")
        return "graft", f"""## How to load

This folder is not a Hugging Face or timm checkpoint: `model.safetensors` holds graft's EfficientNet
(`graft.modalities.image.model`) with a {len(meta.get("labels", []))}-class head; `graft_model.json` rebuilds it.
Load it with graft (PyTorch):

```python
from graft.modalities import load_model

processor, model, meta = load_model("path/to/this/folder")
pixels = processor([open("shirt.png", "rb").read()])["pixel_values"]  # {size} x {size}, as in training
probabilities = model(pixel_values=pixels).softmax(-1)  # columns: meta["labels"]
```

To serve it without graft or PyTorch, use the ONNX package `graft export` writes from it (models/onnx: `model.onnx`,
`labels.json`; ONNX Runtime, input `pixel_values`), or `mlflow.pyfunc.load_model("models:/NAME@champion")`.
"""

    def card(self, meta: dict) -> tuple[str, str]:
        """Input size."""
        size = meta.get("image_size", "?")
        return f"{size} px inputs", f"- Images are resized to {size} px squares (aspect ratio not kept)"


IMAGE = ImageModality()

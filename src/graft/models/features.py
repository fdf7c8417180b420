"""A content-addressed cache of frozen, mean-pooled backbone features.

Selection computes pooled features of the training texts to score each backbone; feature-extraction training needs
the same vectors for the same texts. Each vector is keyed by the hash of its text under a backbone key (the hash of
the backbone's weights and config, the layer, the token limit and the precision), so a vector is reused exactly when
recomputing it would give the same numbers, and a changed backbone or setting can never be served stale features.

On disk: `<root>/<backbone key>/<shard>.npz`, each shard holding `keys` and `vectors` and written atomically; a
run adds one shard with what it had to compute, so concurrent readers never see a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=32)
def _weights_digest(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for f in sorted(Path(folder).iterdir()):
        if f.name == "config.json" or f.suffix in (".safetensors", ".bin"):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
    return h.hexdigest()


def source_digest(folder: str | Path) -> str:
    """sha256 of a backbone folder's config and weight files (memoised while the files are unchanged)."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return _weights_digest(str(folder), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))


def backbone_key(digest: str, layer: int, max_length: int, precision: str) -> str:
    """The key of one feature space: the same backbone, depth, token limit and precision give the same vectors."""
    return hashlib.sha256(f"{digest}|{layer}|{max_length}|{precision}".encode()).hexdigest()[:24]


def text_keys(texts: list[str]) -> np.ndarray:
    """One fixed-width key per text (sha256, 16 bytes as hex)."""
    return np.array([hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts], dtype="S32")


class FeatureCache:
    """Look up and add pooled feature vectors by (backbone key, text); `root=None` caches nothing."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None

    def lookup(self, key: str, texts: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """The cached vectors by text position, and the positions that are missing."""
        wanted = text_keys(texts)
        store: dict[bytes, np.ndarray] = {}
        folder = self.root / key if self.root else None
        if folder and folder.is_dir():
            for shard in sorted(folder.glob("*.npz")):
                with np.load(shard) as z:
                    store.update(zip(z["keys"].tolist(), z["vectors"]))
        found = {i: store[k] for i, k in enumerate(wanted.tolist()) if k in store}
        return found, [i for i in range(len(texts)) if i not in found]

    def add(self, key: str, texts: list[str], vectors: np.ndarray) -> None:
        """Store vectors for texts as one new shard (atomic: a temp file renamed into place)."""
        if not self.root or not len(texts):
            return
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        keys = text_keys(texts)
        name = hashlib.sha256(keys.tobytes()).hexdigest()[:16]
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vectors.astype(np.float32))
        os.replace(tmp, folder / f"{name}.npz")


def digest(source_path: str, config) -> str:
    """Content identity of a backbone: its files' hash for a folder, the snapshot commit for a hub id."""
    if Path(source_path).is_dir():
        return source_digest(source_path)
    return hashlib.sha256(f"{source_path}@{getattr(config, '_commit_hash', None)}".encode()).hexdigest()


def cached(cache: FeatureCache, keys: dict[int, str], texts: list[str],
           compute: Callable[[list[str], list[int]], dict[int, np.ndarray]]) -> tuple[dict[int, np.ndarray], int]:
    """Features at each layer in `keys` (layer -> backbone key) for `texts`, and how many had to be computed.

    Cached vectors are reused; the missing texts go through `compute(texts, layers)` once, for all layers, and are
    added to the cache.
    """
    found = {k: cache.lookup(key, texts) for k, key in keys.items()}
    missing = sorted({i for _, miss in found.values() for i in miss})
    fresh = compute([texts[i] for i in missing], list(keys)) if missing else {}
    position = {i: j for j, i in enumerate(missing)}
    result = {}
    for k, key in keys.items():
        vectors = found[k][0]
        if missing:
            vectors.update({i: fresh[k][position[i]] for i in found[k][1]})
            cache.add(key, [texts[i] for i in missing], fresh[k])
        result[k] = np.stack([vectors[i] for i in range(len(texts))]) if texts else np.zeros((0, 0), np.float32)
    return result, len(missing)

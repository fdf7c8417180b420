"""Lineage facts stamped on every registered model: data version, code version, params hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from graft.artifacts import read_json
from graft.config import Config


def params_hash(cfg: Config) -> str:
    """A short, stable hash of the whole validated config."""
    blob = json.dumps(cfg.to_dict(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def git_commit(cwd: str | Path = ".") -> str:
    """The current commit (with `-dirty` when the tree has changes), or `unknown` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def tags(cfg: Config, split_dir: str | Path, package_meta: dict, verdict: dict) -> dict[str, str]:
    """The tags a registered version carries."""
    manifest = read_json(Path(split_dir) / "manifest.json")
    return {
        "graft.data_md5": manifest["source_md5"],
        "graft.git_commit": git_commit(),
        "graft.params_hash": params_hash(cfg),
        "graft.backbone": package_meta["backbone"]["name"],
        "graft.gate": "passed" if verdict["passed"] else "failed",
    }

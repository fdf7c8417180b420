"""Lineage facts stamped on every registered model: data version, code version, params hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from graft.core.config import Config
from graft.data.tables import manifest_md5

# Settings that say where things live or run, not what the model is: an orchestrator rewrites them (kfp.local makes
# paths absolute; a cluster points them at a volume), so they stay out of the params hash.
NOT_THE_MODEL = {"data": ("raw",), "validate": ("profile_dir",), "select": ("feature_cache",),
                 "registry": None, "kubeflow": None}


def model_params(cfg: Config) -> dict:
    """The validated config less where things live (paths, registry, cluster): what determines the model."""
    raw = cfg.to_dict()
    for section, keys in NOT_THE_MODEL.items():
        if keys is None:
            raw.pop(section, None)
        else:
            for key in keys:
                raw.get(section, {}).pop(key, None)
    return raw


def params_hash(cfg: Config) -> str:
    """A short, stable hash of what determines the model: the same under DVC and KFP for the same params.yaml."""
    blob = json.dumps(model_params(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


CODE = (":/src", ":/components", ":/pipelines")  # what builds the model; params and data have hashes of their own


def git_commit(cwd: str | Path = ".") -> str:
    """The current commit, or `unknown` outside git.

    When src/, components/ or pipelines/ differ from it (edited or new files), `-dirty-` and a hash of those
    differences follow, so two different edits on one commit are two code versions for freshness and lineage.
    Other changes (the metrics and dvc.lock a run rewrites) leave the commit as it is.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout

    try:
        sha = git("rev-parse", "HEAD").strip()
        diff = git("diff", "HEAD", "--binary", "--", *CODE)
        new = sorted(filter(None, git("ls-files", "--others", "--exclude-standard", "-z", "--", *CODE).split("\0")))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not diff and not new:
        return sha
    digest = hashlib.sha256(diff.encode())
    for name in new:
        digest.update(name.encode() + b"\0" + (Path(cwd) / name).read_bytes())
    return f"{sha}-dirty-{digest.hexdigest()[:8]}"


def tags(cfg: Config, split_dir: str | Path, package_meta: dict, verdict: dict) -> dict[str, str]:
    """The tags a registered version carries."""
    return {
        "graft.data_md5": manifest_md5(split_dir) or "unknown",
        "graft.git_commit": git_commit(),
        "graft.params_hash": params_hash(cfg),
        "graft.backbone": package_meta["backbone"]["name"],
        "graft.gate": "passed" if verdict["passed"] else "failed",
    }

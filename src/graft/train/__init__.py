"""The `train` and `baseline` stages: one loop (graft.train.loop); `init_from` is the only difference between them.

Also home to what the loop needs: transfer modes and optimizers (optim), CPU dropout masks (dropout), resumable
checkpoints (checkpoint) and data-parallel workers (distributed).
"""

from __future__ import annotations

from pathlib import Path

from graft.core import outputs
from graft.core.artifacts import write_json
from graft.core.config import Candidate, Config
from graft.core.errors import GraftError
from graft.data.tables import read_splits
from graft.train import distributed
from graft.train.loop import fit

__all__ = ["fit", "run", "selected_candidate"]


def selected_candidate(selection: dict, cfg: Config) -> Candidate:
    """The catalog entry that selection picked (it must still be in params.yaml)."""
    for cand in cfg.select.candidates:
        if cand.name == selection["selected"]:
            return cand
    raise GraftError(f"selected backbone {selection['selected']!r} is not in select.candidates: rerun `graft select`")


def run(split_dir: str | Path, selection: str | Path, out: str | Path, cfg: Config, init_from: str,
        metrics: str | Path, history: str | Path | None = None) -> dict:
    """The stage: read the splits and the selection, fit, write the model folder and the metrics JSON.

    `init_from` is `pretrained` (train) or `scratch` (baseline); `history` (optional) gets the per-epoch rows
    alone, for a DVC plot.
    """
    splits = read_splits(split_dir)
    chosen = selected_candidate(outputs.read(selection, "select"), cfg)
    result = fit(splits["train"], splits["validation"], chosen, cfg, init_from, out)
    if not distributed.world().main:
        return result
    result = outputs.write(metrics, "train", result)
    if history:
        write_json(history, [{"init_from": init_from, **row} for row in result["history"]])
    return result

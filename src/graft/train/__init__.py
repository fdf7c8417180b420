"""The `train` and `baseline` stages: one loop (graft.train.loop); `init_from` is the only difference between them.

Also home to what the loop needs: transfer modes and optimizers (optim), CPU dropout masks (dropout), the bf16
compute copy with fp32 master weights (precision), embedding gradients without zeroing the whole table
(embedding_grads), resumable checkpoints (checkpoint) and data-parallel workers (distributed).
"""

from __future__ import annotations

from pathlib import Path

from graft.core import outputs
from graft.core.artifacts import atomic_dir, write_json
from graft.core.config import Candidate, Config
from graft.core.errors import GraftError
from graft.data.tables import read_splits, read_target
from graft.train import distributed
from graft.train.loop import fit

__all__ = ["adapt_run", "fit", "run", "selected_candidate"]
NO_MODEL = "graft_adapt.json"  # what the adapt stage's folder holds when train.adapt is none


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
    alone, for a DVC plot. Neither adapts: `train` is the source-only model that the `adapt` stage is judged against.
    """
    splits = read_splits(split_dir)
    chosen = selected_candidate(outputs.read(selection, "select"), cfg)
    result = fit(splits["train"], splits["validation"], chosen, cfg, init_from, out)  # no target: source-only
    if not distributed.world().main:
        return result
    result = outputs.write(metrics, "train", result)
    if history:
        write_json(history, [{"init_from": init_from, **row} for row in result["history"]])
    return result


def adapt_run(split_dir: str | Path, selection: str | Path, out: str | Path, cfg: Config, metrics: str | Path) -> dict:
    """The `adapt` stage: the selected backbone fine-tuned with train.adapt on data.target's unlabeled inputs.

    Same data, recipe, seed and budget as `train` (the source-only model), so evaluate compares like with like.
    With train.adapt none the folder holds only a note (graft_adapt.json) and evaluate judges the source-only model.
    """
    if cfg.train.adapt == "none":
        note = "train.adapt is none: no adapted model (the train stage's model is the one judged)"
        with atomic_dir(out) as tmp:
            write_json(Path(tmp) / NO_MODEL, {"method": "none", "note": note})
        return outputs.write(metrics, "adapt", {"method": "none", "note": note})
    target = read_target(split_dir).get("target")
    if target is None:
        raise GraftError(f"train.adapt={cfg.train.adapt} needs the target domain's inputs: set data.target.raw in "
                         "params.yaml (prepare writes them beside the splits)")
    splits = read_splits(split_dir)
    chosen = selected_candidate(outputs.read(selection, "select"), cfg)
    run = fit(splits["train"], splits["validation"], chosen, cfg, "pretrained", out, target=target)
    note = f"{cfg.train.adapt} on {len(target)} unlabeled target inputs"
    return outputs.write(metrics, "adapt", {"method": cfg.train.adapt, "note": note, "run": run})

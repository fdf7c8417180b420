"""The `evaluate` stage: fine-tuned, scratch, classical and champion models scored and compared on one test split."""

from __future__ import annotations

from pathlib import Path

from graft import modalities
from graft.core import outputs
from graft.core.artifacts import write_json
from graft.core.config import Config
from graft.data.tables import manifest_md5, read_splits, read_target
from graft.evaluate.domains import domains
from graft.evaluate.scoring import evaluate, selfcheck

__all__ = ["domains", "evaluate", "run", "selfcheck"]


def run(split_dir: str | Path, finetune: str | Path, scratch: str | Path, cfg: Config, out: str | Path,
        confusion: str | Path | None = None, selection: str | Path | None = None,
        runners_up: str | Path | None = None, adapted: str | Path | None = None) -> dict:
    """The stage: score the models, write the metrics JSON (and the confusion rows for a DVC plot).

    Given the selection and the selfcheck folder (`runners_up`), it also audits the ranking against the real test
    scores (the `selfcheck` field). With an adapted model (`adapted`) or a labeled target test it adds `domains`.
    """
    splits = read_splits(split_dir)
    result, rows, preds = evaluate(splits, finetune, scratch, cfg, manifest_md5(split_dir))
    section = domains(splits, read_target(split_dir), finetune, scratch, adapted, cfg, manifest_md5(split_dir),
                      (result, preds))
    if section:
        result["domains"] = section
    if selection and runners_up:
        result["selfcheck"] = selfcheck(splits["test"], result["finetune"], outputs.read(selection, "select"),
                                        runners_up, cfg)
    result["training"] = curves({"finetune": finetune, "scratch": scratch, "adapted": adapted})
    result = outputs.write(out, "evaluate", result)
    if confusion:
        write_json(confusion, rows)
    return result


def curves(folders: dict[str, str | Path | None]) -> dict[str, list[dict]]:
    """Each trained model's per-epoch history, as its folder recorded it (the gate logs them to MLflow by epoch)."""
    out = {}
    for name, folder in folders.items():
        if folder and (Path(folder) / modalities.MODEL_META).is_file():
            history = modalities.of_model(folder)[1].get("history")
            if history:
                out[name] = history
    return out

"""One MLflow run per gate decision: params, metrics, lineage tags, and for a promoted candidate its MLflow model."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from graft import modalities
from graft.core.artifacts import read_json
from graft.serve import pyfunc


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def log_run(reg, package: str | Path | None, params: dict, metrics: dict, tags: dict[str, str],
             card: str | None = None, attached: list | None = None, example: list | None = None):
    """One finished MLflow run holding the params, the numeric metrics, the tags, the model and its card.

    The model is logged as an MLflow model folder (`graft.serve.pyfunc`: MLmodel, signature, input example from
    `example`, the ONNX package under data/), so `mlflow.pyfunc.load_model` and `mlflow models serve` can use it.

    A refused candidate's run (`package=None`) keeps the record without the model: the runs index shows every
    retraining, not only the promoted ones. The run carries this process' host and pid, so a run left RUNNING by a
    killed process can be told from a live one (`end_orphaned_runs`).
    """
    from mlflow.entities import Metric, Param, RunTag

    exp = reg.call("get_experiment_by_name", reg.cfg.experiment)
    exp_id = exp.experiment_id if exp else reg.call(
        "create_experiment", reg.cfg.experiment, artifact_location=Path(reg.cfg.artifact_location).resolve().as_uri())
    own = {"graft.host": socket.gethostname(), "graft.pid": str(os.getpid())}
    run = reg.call("create_run", exp_id, run_name="graft-gate", tags={**tags, **own})
    try:
        flat = {k: v for k, v in _flatten("", params).items() if not isinstance(v, list)}
        numbers = {k: float(v) for k, v in _flatten("", metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        now = int(time.time() * 1000)
        logged = [Metric(k, v, now, 0) for k, v in numbers.items()] + epochs(metrics, now)
        reg.call("log_batch", run.info.run_id, params=[Param(k, str(v)[:500]) for k, v in flat.items()],
                 metrics=logged[:1000], tags=[RunTag(k, v) for k, v in tags.items()])
        for start in range(1000, len(logged), 1000):  # MLflow takes at most 1000 metrics per batch
            reg.call("log_batch", run.info.run_id, metrics=logged[start:start + 1000])
        if package is not None:
            with tempfile.TemporaryDirectory(prefix="graft-mlmodel-") as tmp:
                model = pyfunc.save(package, Path(tmp) / "model", example or probe(package))
                reg.call("log_artifacts", run.info.run_id, str(model), artifact_path="model")
        if card:
            reg.call("log_text", run.info.run_id, card, "model_card.md")
        for path in attached or []:  # the explain stage's JSON and page, beside the model and its card
            reg.call("log_artifact", run.info.run_id, str(path), artifact_path="explanations")
    except BaseException:
        with contextlib.suppress(Exception):
            reg.client.set_terminated(run.info.run_id, status="FAILED")
        raise
    reg.call("set_terminated", run.info.run_id)
    return run


def epochs(metrics: dict, now: int) -> list:
    """The training curves (evaluate's `training`) as MLflow metrics `train.MODEL.KEY`, one step per epoch."""
    from mlflow.entities import Metric

    out = []
    for model, history in ((metrics.get("evaluate") or {}).get("training") or {}).items():
        for row in history:
            step = int(row.get("epoch", 0))
            out += [Metric(f"train.{model}.{k}", float(v), now, step) for k, v in row.items()
                    if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return out


def probe(package: str | Path) -> list:
    """The input example of a package registered without test rows: its modality's probe input."""
    meta = read_json(Path(package) / "graft_model.json")
    return modalities.get(meta.get("modality", "text")).probe(meta)

"""Registering a promoted model in the MLflow model registry, with its params, metrics and lineage.

The alias (default `champion`) moves only after the run, its artifacts and the model version all exist, so a
failure part-way never leaves the alias pointing at a half-registered model.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Any

from graft.core.artifacts import read_json
from graft.core.config import RegistryConfig
from graft.core.errors import GraftError
from graft.promote import lineage
from graft.promote.card import model_card


def tracking_uri(cfg: RegistryConfig) -> str:
    """The MLflow tracking URI: MLFLOW_TRACKING_URI when set, else the configured one (a project SQLite file)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


def connect(cfg: RegistryConfig):
    """An MlflowClient bound to this config's URI (no global mlflow state: set_tracking_uri writes the env)."""
    import mlflow

    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(cfg)
    return mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion(cfg: RegistryConfig) -> dict | None:
    """The version the alias points at, or None when nothing was promoted yet."""
    mlflow, client = connect(cfg)
    try:
        mv = client.get_model_version_by_alias(cfg.model_name, cfg.alias)
    except mlflow.exceptions.MlflowException:
        return None
    return {"model_name": cfg.model_name, "version": int(mv.version), "run_id": mv.run_id, "source": mv.source}


def version_tags(cfg: RegistryConfig, version: int) -> dict[str, str]:
    """The tags of one registered version (lineage, gate verdict, promotion history)."""
    _, client = connect(cfg)
    return dict(client.get_model_version(cfg.model_name, str(version)).tags)


def download_champion(cfg: RegistryConfig, dest: str | Path) -> dict | None:
    """Fetch the champion's model package into `dest`; its version info plus "path", or None on a first run."""
    current = champion(cfg)
    if current is None:
        return None
    _, client = connect(cfg)
    path = client.download_artifacts(current["run_id"], "model", str(dest))
    return {**current, "path": path}


def _log_run(client, exp_id: str, package: str | Path | None, params: dict, metrics: dict, tags: dict[str, str],
             card: str | None = None, attached: list | None = None):
    """One finished MLflow run holding the params, the numeric metrics, the tags, the model package and card.

    A refused candidate's run (`package=None`) keeps the record without the model: the runs index shows every
    retraining, not only the promoted ones.
    """
    from mlflow.entities import Metric, Param, RunTag

    run = client.create_run(exp_id, run_name="graft-gate", tags=tags)
    try:
        flat = {k: v for k, v in _flatten("", params).items() if not isinstance(v, list)}
        numbers = {k: float(v) for k, v in _flatten("", metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, params=[Param(k, str(v)[:500]) for k, v in flat.items()],
                         metrics=[Metric(k, v, now, 0) for k, v in numbers.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        if package is not None:
            client.log_artifacts(run.info.run_id, str(package), artifact_path="model")
        if card:
            client.log_text(run.info.run_id, card, "model_card.md")
        for path in attached or []:  # the explain stage's JSON and page, beside the model and its card
            client.log_artifact(run.info.run_id, str(path), artifact_path="explanations")
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id)
    return run


def _experiment(client, cfg: RegistryConfig) -> str:
    exp = client.get_experiment_by_name(cfg.experiment)
    return exp.experiment_id if exp else client.create_experiment(
        cfg.experiment, artifact_location=Path(cfg.artifact_location).resolve().as_uri())


def register(package: str | Path, cfg: RegistryConfig, params: dict, metrics: dict, tags: dict[str, str],
             card: str | None = None, attached: list | None = None) -> dict:
    """Log a run (params, numeric metrics, the model package) and make it the new `alias` version."""
    mlflow, client = connect(cfg)
    try:
        run = _log_run(client, _experiment(client, cfg), package, params, metrics, tags, card, attached)
        if not client.search_registered_models(filter_string=f"name = '{cfg.model_name}'"):
            client.create_registered_model(cfg.model_name)
        mv = client.create_model_version(cfg.model_name, source=f"{run.info.artifact_uri}/model",
                                         run_id=run.info.run_id, tags=tags)
        with registry_lock(cfg):
            _move_alias(client, cfg, int(mv.version), "gate passed")
    except mlflow.exceptions.MlflowException as exc:
        raise GraftError(f"registry {tracking_uri(cfg)}: {str(exc).splitlines()[0]}") from None
    return {"model_name": cfg.model_name, "version": int(mv.version), "alias": cfg.alias,
            "run_id": run.info.run_id, "tracking_uri": tracking_uri(cfg)}


@contextlib.contextmanager
def registry_lock(cfg: RegistryConfig):
    """Serialise alias moves between concurrent runs (an exclusive lock file beside the artifact store)."""
    path = Path(cfg.artifact_location).resolve().parent / f".graft-{cfg.model_name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _move_alias(client, cfg: RegistryConfig, version: int, reason: str) -> int | None:
    """Point the alias at `version`, recording on it the champion it replaces and why; return that old one."""
    current = champion(cfg)
    previous = current["version"] if current else None
    if previous == version:
        return previous
    # Order matters for a process killed in between: the lineage tag first (harmless on a version that never
    # becomes champion, and what rollback needs once it has), then the alias (the one step that promotes), then
    # the reason, so no version that is not the champion ever carries a promotion reason.
    client.set_model_version_tag(cfg.model_name, str(version), "graft.previous_champion", str(previous or "none"))
    client.set_registered_model_alias(cfg.model_name, cfg.alias, str(version))
    client.set_model_version_tag(cfg.model_name, str(version), "graft.promotion_reason", reason)
    return previous


def set_champion(cfg: RegistryConfig, version: int, reason: str) -> dict:
    """A person's promotion of an existing version (a recorded manual override of the gate)."""
    mlflow, client = connect(cfg)
    try:
        client.get_model_version(cfg.model_name, str(version))
    except mlflow.exceptions.MlflowException:
        raise GraftError(f"{cfg.model_name} has no version {version} in {tracking_uri(cfg)}") from None
    with registry_lock(cfg):
        previous = _move_alias(client, cfg, version, f"manual: {reason}")
    return {"model_name": cfg.model_name, "version": version, "previous": previous, "alias": cfg.alias}


def rollback(cfg: RegistryConfig, reason: str) -> dict:
    """Point the alias back at the champion the current one replaced."""
    mlflow, client = connect(cfg)
    current = champion(cfg)
    if current is None:
        raise GraftError(f"{cfg.model_name}: no champion to roll back from")
    tags = client.get_model_version(cfg.model_name, str(current["version"])).tags
    previous = tags.get("graft.previous_champion", "none")
    if previous == "none":
        raise GraftError(f"{cfg.model_name} v{current['version']} replaced no earlier champion: "
                         "nothing to roll back to")
    with registry_lock(cfg):
        client.set_model_version_tag(cfg.model_name, str(current["version"]), "graft.rolled_back", reason)
        client.set_registered_model_alias(cfg.model_name, cfg.alias, previous)
    return {"model_name": cfg.model_name, "version": int(previous), "rolled_back": current["version"],
            "alias": cfg.alias}


def promote(package: str | Path, split_dir: str | Path, cfg, evaluation: dict, parity: dict, verdict: dict,
            explanation: dict | None = None, attached: list | None = None) -> dict:
    """Register a package that passed the gate, stamped with its lineage (data md5, commit, params hash).

    `attached` files (the explain stage's JSON and page) are logged under the run's `explanations/`.
    """
    if not verdict["passed"]:
        raise GraftError("refusing to register a model that failed the gate")
    meta = read_json(Path(package) / "graft_model.json")
    tags = lineage.tags(cfg, split_dir, meta, verdict)
    card = model_card(meta, tags, evaluation, parity, verdict, explanation)
    metrics = {"evaluate": evaluation, "export": parity,
               **({"explain": {"faithfulness": explanation["faithfulness"]}} if explanation else {})}
    return register(package, cfg.registry, cfg.to_dict(), metrics, tags, card, attached)


def record_refusal(split_dir: str | Path, cfg, evaluation: dict, parity: dict, verdict: dict,
                   package: str | Path) -> str:
    """Log a refused candidate as an MLflow run (metrics, lineage, the reasons; no model version, no alias move)."""
    meta = read_json(Path(package) / "graft_model.json")
    tags = {**lineage.tags(cfg, split_dir, meta, verdict), "graft.reasons": "; ".join(verdict["reasons"])[:4000]}
    mlflow, client = connect(cfg.registry)
    try:
        run = _log_run(client, _experiment(client, cfg.registry), None, cfg.to_dict(),
                       {"evaluate": evaluation, "export": parity}, tags)
    except mlflow.exceptions.MlflowException as exc:
        raise GraftError(f"registry {tracking_uri(cfg.registry)}: {str(exc).splitlines()[0]}") from None
    return run.info.run_id

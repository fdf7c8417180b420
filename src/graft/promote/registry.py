"""The MLflow model registry as graft uses it: bounded calls, the promotion transaction, audited alias moves.

Every registry call goes through `Registry.call`: a bounded retry with exponential backoff (tenacity) and a
per-request timeout, then a one-line error naming the tracking URI. "No champion" is only ever the answer of a
registry that was reached and holds no such alias; an outage is an error, never an empty registry.

A promotion is one transaction under an exclusive lock: re-read the champion (refuse when it moved since
`evaluate` scored it), log the run, create the version (tagged with its package digest), append the audit entry,
and move the alias last. A failure at any step leaves the alias where it was, and says what was left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Any

from graft import modalities
from graft.core.artifacts import folder_digest, read_json
from graft.core.config import RegistryConfig
from graft.core.errors import GraftError
from graft.core.processes import alive
from graft.data.tables import read_splits
from graft.promote import audit, lineage
from graft.promote.card import model_card
from graft.promote.mlrun import log_run
from graft.serve.pyfunc import package_root

CHALLENGER = audit.CHALLENGER
UNCHECKED = object()  # `register(expected=...)` default: no champion re-check (a bare registration)


def tracking_uri(cfg: RegistryConfig) -> str:
    """The MLflow tracking URI: MLFLOW_TRACKING_URI when set, else the configured one (a project SQLite file)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or cfg.tracking_uri


def connect(cfg: RegistryConfig):
    """An MlflowClient bound to this config's URI (no global mlflow state: set_tracking_uri writes the env).

    MLflow's own HTTP retries (7, backoff up to ~4 minutes) are turned off unless the user set them: graft retries
    each call itself, a bounded number of times, and each HTTP request times out after registry.timeout_s.
    """
    import mlflow

    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per download floods a piped log
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, cfg.timeout_s))))
    uri = tracking_uri(cfg)
    return mlflow, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _absent(exc: BaseException) -> bool:
    """MLflow's answer for a model or alias that does not exist (the registry was reached)."""
    code = getattr(exc, "error_code", None)
    return code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc))


def _cause(exc: BaseException) -> str:
    """What went wrong, in a few words: MLflow nests the HTTP client's errors in long messages."""
    text = str(exc)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "cannot connect (connection refused)"
    if "timed out" in text.lower() or "ReadTimeout" in text:
        return "no answer (timed out; registry.timeout_s)"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def _permanent(exc: BaseException) -> bool:
    """Errors a retry cannot fix: the thing is absent, or the request itself is wrong."""
    return _absent(exc) or getattr(exc, "error_code", None) in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS")


def missing_store(cfg: RegistryConfig) -> Path | None:
    """The local SQLite file a `sqlite:///` tracking URI names, when it does not exist yet (else None)."""
    uri = tracking_uri(cfg)
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri.removeprefix("sqlite:///"))
    return None if path.is_file() else path


class Registry:
    """One registry connection: `call` runs a client method with bounded retries; the rest builds on it.

    Only the gate's promotion creates a local SQLite store (`create=True`); anything else that finds none says so
    instead of leaving an empty mlflow.db behind.
    """

    def __init__(self, cfg: RegistryConfig, create: bool = False):
        self.cfg = cfg
        absent = None if create else missing_store(cfg)
        if absent is not None:
            raise GraftError(f"no registry at {tracking_uri(cfg)}: {absent} does not exist (nothing was registered "
                             f"here yet: run the pipeline first, or set registry.tracking_uri / MLFLOW_TRACKING_URI)")
        self.mlflow, self.client = connect(cfg)
        self.uri = tracking_uri(cfg)

    def call(self, method: str, *args, absent_ok: bool = False, **kwargs):
        """`client.method(*args)`, retried on transient errors; absent -> None when `absent_ok`, else an error."""
        import tenacity

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.cfg.retries + 1) | tenacity.stop_after_delay(self.cfg.timeout_s * 3),
            wait=tenacity.wait_exponential(multiplier=0.5, max=5),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, Exception) and not _permanent(e)),
            reraise=True)
        try:
            return retrying(getattr(self.client, method), *args, **kwargs)
        except Exception as exc:
            if absent_ok and _absent(exc):
                return None
            raise GraftError(f"registry {self.uri} ({method}): {_cause(exc)} after {self.cfg.retries + 1} tries "
                             f"(registry.tracking_uri or MLFLOW_TRACKING_URI)") from None

    def champion(self, alias: str | None = None) -> dict | None:
        """The version `alias` (default: the configured one) points at; None only when the registry says none."""
        mv = self.call("get_model_version_by_alias", self.cfg.model_name, alias or self.cfg.alias, absent_ok=True)
        if mv is None:
            return None
        return {"model_name": self.cfg.model_name, "version": int(mv.version), "run_id": mv.run_id,
                "source": mv.source, "digest": mv.tags.get("graft.package_sha256")}

    def model_tags(self) -> dict[str, str]:
        """The registered model's tags (the audit log lives there); empty when the model does not exist yet."""
        rm = self.call("get_registered_model", self.cfg.model_name, absent_ok=True)
        return dict(rm.tags) if rm is not None else {}

    def log(self, alias: str | None = None) -> list[dict]:
        """The audit log of `alias` (default: the configured one), oldest first."""
        return audit.entries(self.model_tags(), alias or self.cfg.alias)

    def download(self, version: int, dest: str | Path) -> Path:
        """A version's model package (inside its MLflow model folder) in `dest`, its digest checked."""
        mv = self.call("get_model_version", self.cfg.model_name, str(version))
        path = package_root(self.call("download_artifacts", mv.run_id, "model", str(dest)))
        registered = mv.tags.get("graft.package_sha256")
        if registered and folder_digest(path) != registered:
            raise GraftError(f"{self.cfg.model_name} v{version}: the downloaded package's digest differs from the "
                             f"one registered with it ({registered[:12]}): refusing it")
        return path

    def move(self, to: int, kind: str, why: str, checks: str = "", by: str | None = None,
             alias: str | None = None) -> int | None:
        """Audit, then point the alias at `to` (the last step); return the version it left. Call under `lock`."""
        alias = alias or self.cfg.alias
        current = self.champion(alias)
        previous = current["version"] if current else None
        if previous == to:
            return previous
        key, value = audit.entry(self.model_tags(), alias, kind, to, previous, why, checks, by)
        self.call("set_registered_model_tag", self.cfg.model_name, key, value)
        # the lineage tag before the alias (harmless on a version that never becomes champion), the reason after it,
        # so no version that is not the champion ever carries a promotion reason
        self.call("set_model_version_tag", self.cfg.model_name, str(to), "graft.previous_champion",
                  str(previous or "none"))
        self.call("set_registered_model_alias", self.cfg.model_name, alias, str(to))
        self.call("set_model_version_tag", self.cfg.model_name, str(to), "graft.promotion_reason", f"{kind}: {why}")
        return previous

    def end_orphaned_runs(self) -> list[str]:
        """End as FAILED the gate runs a killed process left RUNNING on this host. Call under `lock`.

        Every graft run is created and ended under the registry lock, so a RUNNING run of this host seen while
        holding it belongs to a process that died (its pid, recorded on the run, is checked too).
        """
        exp = self.call("get_experiment_by_name", self.cfg.experiment)
        if exp is None:
            return []
        runs = self.call("search_runs", [exp.experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
        ended = []
        for r in runs:
            tags = r.data.tags
            if tags.get("graft.host") != socket.gethostname() or _alive(tags.get("graft.pid")):
                continue
            self.call("set_tag", r.info.run_id, "graft.failure",
                      f"the process (pid {tags.get('graft.pid')}) ended before the run did: killed or crashed")
            self.call("set_terminated", r.info.run_id, status="FAILED")
            ended.append(r.info.run_id)
        return ended


def _alive(pid: str | None) -> bool:
    # this process holds the lock: a run of its own still RUNNING was abandoned, so it counts as not alive
    return bool(pid) and pid.isdigit() and int(pid) != os.getpid() and alive(int(pid))


@contextlib.contextmanager
def lock(cfg: RegistryConfig):
    """Serialise promotions and alias moves between processes (an exclusive lock file beside the artifact store)."""
    path = Path(cfg.artifact_location).resolve().parent / f".graft-{cfg.model_name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)



def champion(cfg: RegistryConfig) -> dict | None:
    """The version the alias points at, or None: the registry holds no such alias, or is a local store not made yet.

    A `sqlite:///` store that does not exist has had nothing registered (a first run); it is not created here.
    """
    return None if missing_store(cfg) is not None else Registry(cfg).champion()


def version_tags(cfg: RegistryConfig, version: int) -> dict[str, str]:
    """The tags of one registered version (lineage, gate verdict, promotion history)."""
    return dict(Registry(cfg).call("get_model_version", cfg.model_name, str(version)).tags)


def download_champion(cfg: RegistryConfig, dest: str | Path) -> dict | None:
    """Fetch the champion's model package into `dest`; its version info plus "path", or None on a first run."""
    if missing_store(cfg) is not None:
        return None
    reg = Registry(cfg)
    current = reg.champion()
    if current is None:
        return None
    return {**current, "path": str(reg.download(current["version"], dest))}


def register(package: str | Path, cfg: RegistryConfig, params: dict, metrics: dict, tags: dict[str, str],
             card: str | None = None, attached: list | None = None, expected: Any = UNCHECKED,
             checks: str = "", why: str = "gate passed", alias: str | None = None, example: list | None = None
             ) -> dict:
    """The promotion transaction: log a run with the package, create a version, move the alias to it last.

    `expected` is the champion version `evaluate` scored against (None: none): when the registry's champion is
    another one now, nothing is registered. A failure after the version exists leaves it registered but unaliased,
    tagged `graft.promotion: not promoted (...)`, and the error says so.
    """
    reg = Registry(cfg, create=True)
    alias = alias or cfg.alias
    with lock(cfg):
        reg.end_orphaned_runs()
        current = reg.champion()
        now = current["version"] if current else None
        if expected is not UNCHECKED and now != expected:
            raise GraftError(f"the champion moved from {_v(expected)} to {_v(now)} since evaluate scored the "
                             f"candidate against it: rerun evaluate (nothing was registered)")
        digest = folder_digest(package)
        run = log_run(reg, package, params, metrics, tags, card, attached, example)
        if reg.call("get_registered_model", cfg.model_name, absent_ok=True) is None:
            reg.call("create_registered_model", cfg.model_name)
        judged = {} if expected is UNCHECKED else {"graft.evaluated_against": str(expected or "none")}
        mv = reg.call("create_model_version", cfg.model_name, source=f"{run.info.artifact_uri}/model",
                      run_id=run.info.run_id, tags={**tags, **judged, "graft.package_sha256": digest,
                                                    "graft.promotion": "pending"})
        version = int(mv.version)
        if card:  # the version page's description: the model card
            reg.call("update_model_version", cfg.model_name, str(version), description=card)
        try:
            reg.move(version, "gate", why, checks, alias=alias)
        except GraftError as exc:
            with contextlib.suppress(Exception):
                reg.client.set_model_version_tag(cfg.model_name, str(version), "graft.promotion",
                                                 f"not promoted ({str(exc)[:200]})")
            raise GraftError(f"v{version} was registered but the alias '{alias}' stays on {_v(now)}: {exc}") from None
        reg.call("set_model_version_tag", cfg.model_name, str(version), "graft.promotion", alias)
    return {"model_name": cfg.model_name, "version": version, "alias": alias, "previous": now,
            "run_id": run.info.run_id, "tracking_uri": reg.uri, "digest": digest}


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "no champion"


def _checks_summary(verdict: dict) -> str:
    return "; ".join(f"{c['name']} {'ok' if c['passed'] else 'FAILED'}" for c in verdict.get("checks", []))


def promote(package: str | Path, split_dir: str | Path, cfg, evaluation: dict, parity: dict, verdict: dict,
            explanation: dict | None = None, attached: list | None = None) -> dict:
    """Register a package that passed the gate, stamped with its lineage (data md5, commit, params hash).

    The champion `evaluate` scored (evaluation["champion"]) must still be the registry's, or nothing is
    registered. `attached` files (the explain stage's JSON and page) are logged under the run's `explanations/`.
    Under gate.approval: required the version gets the alias `challenger` and waits for `graft approve`.
    """
    if not verdict["passed"]:
        raise GraftError("refusing to register a model that failed the gate")
    meta = read_json(Path(package) / "graft_model.json")
    tags = lineage.tags(cfg, split_dir, meta, verdict)
    card = model_card(meta, tags, evaluation, parity, verdict, explanation)
    metrics = {"evaluate": evaluation, "export": parity,
               **({"explain": {"faithfulness": explanation["faithfulness"]}} if explanation else {})}
    scored = (evaluation.get("champion") or {}).get("version")
    modality = modalities.get(meta.get("modality", "text"))
    example = modality.examples(read_splits(split_dir)["test"].head(3))
    required = cfg.gate.approval == "required"
    return register(package, cfg.registry, cfg.to_dict(), metrics, tags, card, attached, expected=scored,
                    checks=_checks_summary(verdict), alias=CHALLENGER if required else None,
                    why="gate passed; awaiting approval" if required else "gate passed", example=example)


def record_refusal(split_dir: str | Path, cfg, evaluation: dict, parity: dict, verdict: dict,
                   package: str | Path) -> str:
    """Log a refused candidate as an MLflow run (metrics, lineage, the reasons; no model version, no alias move)."""
    meta = read_json(Path(package) / "graft_model.json")
    tags = {**lineage.tags(cfg, split_dir, meta, verdict), "graft.reasons": "; ".join(verdict["reasons"])[:4000]}
    reg = Registry(cfg.registry, create=True)  # the first run may be a refusal: it is recorded all the same
    with lock(cfg.registry):
        reg.end_orphaned_runs()
        run = log_run(reg, None, cfg.to_dict(), {"evaluate": evaluation, "export": parity}, tags)
    return run.info.run_id

"""Alias moves by hand: promote, rollback, approve, reject: each checked first, each appended to the audit log.

A move downloads the version it goes to (its digest checked against the one the gate registered), runs the
caller's check on it (the CLI's: infra-validation, `graft serve` answering test rows) and refuses a version that
fails; only then is the audit entry written and the alias moved, under the registry lock.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from graft.core.config import RegistryConfig
from graft.core.errors import GraftError
from graft.promote import audit
from graft.promote.registry import CHALLENGER, Registry, lock

Check = Callable[[Path], dict]  # a package folder -> {"passed": bool, "why": str}, e.g. infra-validation


def checked_move(cfg: RegistryConfig, version: int, kind: str, why: str, check: Check | None,
                 by: str | None = None, alias: str | None = None) -> dict:
    """Move the alias to an existing version after it passed `check` (its package downloaded and digest-checked)."""
    reg = Registry(cfg)
    if reg.call("get_model_version", cfg.model_name, str(version), absent_ok=True) is None:
        raise GraftError(f"{cfg.model_name} has no version {version} in {reg.uri}")
    with lock(cfg):
        result = _check(reg, version, check)
        if not result["passed"]:
            raise GraftError(f"{cfg.model_name} v{version} failed its checks, the alias did not move: {result['why']}")
        previous = reg.move(version, kind, why, result["why"], by, alias)
    return {"model_name": cfg.model_name, "version": version, "previous": previous, "alias": alias or cfg.alias,
            "checks": result["why"]}


def _check(reg: Registry, version: int, check: Check | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="graft-check-") as tmp:
        try:
            path = reg.download(version, tmp)
        except GraftError as exc:
            return {"passed": False, "why": str(exc)}
        return check(path) if check else {"passed": True, "why": "package downloaded, digest matches"}


def set_champion(cfg: RegistryConfig, version: int, reason: str, check: Check | None = None,
                 by: str | None = None) -> dict:
    """A person's promotion of an existing version (an override of the gate), after it passed `check`."""
    return checked_move(cfg, version, "promote", f"manual: {reason}", check, by)


def rollback(cfg: RegistryConfig, reason: str, check: Check | None = None, by: str | None = None) -> dict:
    """Point the alias back along the audit log at the most recent earlier version that passes `check`."""
    reg = Registry(cfg)
    current = reg.champion()
    if current is None:
        raise GraftError(f"{cfg.model_name}: no champion to roll back from")
    candidates = audit.rollback_candidates(reg.log(), current["version"])
    if not candidates:  # versions promoted before the audit log existed carry their predecessor as a tag
        earlier = reg.call("get_model_version", cfg.model_name, str(current["version"])).tags.get(
            "graft.previous_champion", "none")
        candidates = [] if earlier == "none" else [int(earlier)]
    if not candidates:
        raise GraftError(f"{cfg.model_name} v{current['version']} replaced no earlier champion: "
                         "nothing to roll back to")
    refused = []
    with lock(cfg):
        for version in candidates:
            result = _check(reg, version, check)
            if not result["passed"]:
                refused.append(f"v{version}: {result['why']}")
                continue
            reg.call("set_model_version_tag", cfg.model_name, str(current["version"]), "graft.rolled_back", reason)
            reg.move(version, "rollback", reason, result["why"], by)
            return {"model_name": cfg.model_name, "version": version, "rolled_back": current["version"],
                    "alias": cfg.alias, "skipped": refused}
    raise GraftError(f"{cfg.model_name}: no earlier version passes its checks, the alias stays on "
                     f"v{current['version']}: " + "; ".join(refused))


def history(cfg: RegistryConfig) -> tuple[list[str], dict[str, int | None]]:
    """`graft history`: the audit log's lines (champion and challenger), and where each alias points now."""
    reg = Registry(cfg)
    where = {}
    for alias in (cfg.alias, CHALLENGER):
        found = reg.champion(alias)
        where[alias] = found["version"] if found else None
    return audit.lines(audit.entries(reg.model_tags()), where), where


def _challenger(reg: Registry, version: int) -> None:
    found = reg.champion(CHALLENGER)
    if found is None or found["version"] != version:
        now = f"v{found['version']}" if found else "no version"
        raise GraftError(f"{reg.cfg.model_name} v{version} is not the '{CHALLENGER}' ({now} is): only a version the "
                         "gate passed under gate.approval: required waits for a decision")


def _on_card(reg: Registry, version: int, section: str) -> None:
    """Append a decision to the version's model card (model_card.md in its run), so the card says who decided."""
    run_id = reg.call("get_model_version", reg.cfg.model_name, str(version)).run_id
    with tempfile.TemporaryDirectory(prefix="graft-card-") as tmp:
        try:
            text = Path(reg.call("download_artifacts", run_id, "model_card.md", tmp)).read_text()
        except GraftError:  # a version registered without a card
            text = ""
    reg.call("log_text", run_id, text.rstrip("\n") + "\n\n" + section + "\n", "model_card.md")


def approve(cfg: RegistryConfig, version: int, by: str, note: str, check: Check | None = None) -> dict:
    """A person approves the challenger: re-checked, the champion moved to it, the decision in the log and card.

    Refused when the champion moved since the gate judged the challenger against it (its non-regression check
    would be stale), or when the version no longer passes `check`.
    """
    reg = Registry(cfg)
    with lock(cfg):
        _challenger(reg, version)
        judged = reg.call("get_model_version", cfg.model_name, str(version)).tags.get("graft.evaluated_against")
        current = reg.champion()
        now = str(current["version"]) if current else "none"
        if judged is not None and judged != now:
            raise GraftError(f"the champion moved from {_named(judged)} to {_named(now)} since the gate judged "
                             f"v{version} against it: rerun the pipeline (nothing was approved)")
        result = _check(reg, version, check)
        if not result["passed"]:
            raise GraftError(f"{cfg.model_name} v{version} failed its checks, it was not approved: {result['why']}")
        previous = reg.move(version, "approve", note, result["why"], by)
        reg.call("delete_registered_model_alias", cfg.model_name, CHALLENGER)
        reg.call("set_model_version_tag", cfg.model_name, str(version), "graft.approved", f"{by}: {note}")
        _on_card(reg, version, f"## Approval\n\nApproved by {by} ({audit.now()}): {note}")
    return {"model_name": cfg.model_name, "version": version, "previous": previous, "alias": cfg.alias,
            "checks": result["why"]}


def reject(cfg: RegistryConfig, version: int, by: str, note: str) -> dict:
    """A person rejects the challenger: the refusal in the log, on the version and its card; its alias goes."""
    reg = Registry(cfg)
    with lock(cfg):
        _challenger(reg, version)
        key, value = audit.entry(reg.model_tags(), CHALLENGER, "reject", version, None, note, "", by)
        reg.call("set_registered_model_tag", cfg.model_name, key, value)
        reg.call("set_model_version_tag", cfg.model_name, str(version), "graft.rejected", f"{by}: {note}")
        reg.call("delete_registered_model_alias", cfg.model_name, CHALLENGER)
        _on_card(reg, version, f"## Rejected\n\nRejected by {by} ({audit.now()}): {note}")
    current = reg.champion()
    return {"model_name": cfg.model_name, "version": version, "champion": current["version"] if current else None}


def _named(version: str) -> str:
    return "no champion" if version == "none" else f"v{version}"

"""`graft promote`, `rollback`, `history`: alias moves by hand, each checked, each in the audit log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graft.cli.commands import _cfg, command
from graft.core import config
from graft.core.errors import GraftError


def _move_check(args: argparse.Namespace, cfg: config.Config):
    """The check an alias move runs on the version it moves to: infra-validation on --splits' test rows."""
    from graft.promote import infra

    splits = Path(args.splits)
    if not (splits / "test.parquet").is_file():
        raise GraftError(f"{splits}: no prepared test split to check the version with (give --splits, the folder "
                         "`graft prepare` wrote; the alias did not move)")
    return lambda package: infra.validate(package, splits, cfg)


@command
def cmd_promote(args: argparse.Namespace) -> int:
    """Make a registered version the champion by hand (an override of the gate), after it passes infra-validation.

    The version is downloaded, its digest checked, started with `graft serve` and sent test rows from --splits; a
    version that does not load or answer is refused and the alias stays. The move is appended to the audit log
    (`graft history`) with who, why and the checks.
    """
    from graft.promote import moves

    cfg = _cfg(args)
    r = moves.set_champion(cfg.registry, args.version, args.reason, _move_check(args, cfg), args.by)
    print(f"{r['model_name']} v{r['version']} is now '{r['alias']}' (was "
          + (f"v{r['previous']}" if r["previous"] else "none") + f"); checks: {r['checks']}")
    return 0


@command
def cmd_rollback(args: argparse.Namespace) -> int:
    """Point the champion alias back at the most recent earlier champion that still passes its checks.

    The audit log is walked back from the newest move; versions rolled back or rejected before are skipped, and
    each candidate is infra-validated (as `graft promote` does) until one passes.
    """
    from graft.promote import moves

    cfg = _cfg(args)
    r = moves.rollback(cfg.registry, args.reason, _move_check(args, cfg), args.by)
    for skipped in r["skipped"]:
        print(f"skipped {skipped}", file=sys.stderr)
    print(f"{r['model_name']}: '{r['alias']}' is back on v{r['version']} (v{r['rolled_back']} rolled back)")
    return 0


@command
def cmd_approve(args: argparse.Namespace) -> int:
    """Approve the challenger (gate.approval: required): re-checked, then made the champion; recorded with --by/--note.

    Refused when the champion moved since the gate judged the challenger against it, or when the version no longer
    passes infra-validation on --splits' test rows.
    """
    from graft.promote import moves

    cfg = _cfg(args)
    r = moves.approve(cfg.registry, args.version, args.by, args.note, _move_check(args, cfg))
    print(f"{r['model_name']} v{r['version']} approved by {args.by}: now '{r['alias']}' (was "
          + (f"v{r['previous']}" if r["previous"] else "none") + f"); checks: {r['checks']}")
    return 0


@command
def cmd_reject(args: argparse.Namespace) -> int:
    """Reject the challenger (gate.approval: required): the refusal is recorded; the champion stays where it is."""
    from graft.promote import moves

    r = moves.reject(_cfg(args).registry, args.version, args.by, args.note)
    print(f"{r['model_name']} v{r['version']} rejected by {args.by}; the champion stays "
          + (f"v{r['champion']}" if r["champion"] else "unset"))
    return 0


@command
def cmd_history(args: argparse.Namespace) -> int:
    """Print the alias audit log: every move (gate, promote, rollback), when, by whom, why, and its checks."""
    from graft.promote import moves, registry

    cfg = _cfg(args)
    lines, where = moves.history(cfg.registry)
    print(f"{cfg.registry.model_name} in {registry.tracking_uri(cfg.registry)}: "
          + ", ".join(f"{alias} " + (f"v{v}" if v else "unset") for alias, v in where.items()))
    print("\n".join(lines) if lines else "no alias moves recorded yet")
    return 0

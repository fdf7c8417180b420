"""`graft validate` and `graft init`: the data a pipeline will train on, checked before anything trains."""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
from pathlib import Path

from graft.cli.commands import _cfg, command
from graft.core import config
from graft.core.errors import GraftError


def add_parser(sub) -> None:
    """`graft init`'s options (validate's are with the stages)."""
    doc = cmd_init.__doc__
    p = sub.add_parser("init", help=doc.splitlines()[0], description=inspect.cleandoc(doc),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="your labeled data: a .csv, .tsv, .tab, .parquet or .jsonl table, "
                   "or a folder of class folders of images")
    p.add_argument("--params", default="params.yaml", help="the params.yaml to edit (default: %(default)s; images: "
                   "image/params.yaml)")
    for flag, what in (("--text-column", "the texts"), ("--image-column", "the encoded images (Parquet)"),
                       ("--label-column", "the labels"), ("--time-column", "a timestamp per row (optional)")):
        p.add_argument(flag, help=f"the column holding {what}, when it cannot be told from the file")
    p.add_argument("--dry-run", action="store_true", help="print the change to params.yaml; write and copy nothing")


def _print_report(report, where: str) -> bool:
    """Warnings, then one line per failed check, to stderr; whether the report passed."""
    for line in report.warnings(where):
        print(f"graft validate: WARNING: {line}", file=sys.stderr)
    for line in [] if report.passed else report.failures(where):
        print(f"graft validate: {line}", file=sys.stderr)
    return report.passed


def _split_counts(splits: dict) -> str:
    """Rows per split and the smallest class of each: what `prepare` will write."""
    parts = []
    for name, frame in splits.items():
        counts = frame["label"].astype(str).value_counts()
        parts.append(f"{name}={len(frame)} (smallest class {counts.idxmin()}: {counts.min()})" if len(counts)
                     else f"{name}=0")
    return "prepare will write " + ", ".join(parts)


def _check_file(path: str, cfg: config.Config, report_path=None, docs=None, splits: bool = True):
    """The file's own checks, then (with `splits`) the splits `prepare` would make of it.

    Returns (passed, where, the forecast splits or None, the report).
    """
    from graft.data import tables
    from graft.data.validate import forecast, run

    table = tables.read_table(path, cfg.data)
    # a file with a split column is checked as its splits (leakage included), otherwise as one table
    named, train = (tables.by_split(table, path), "train") if "split" in table else ({"data": table}, "data")
    report = run(named, cfg, path, train, report_path, docs, drift=False)
    if not report.passed or not splits:
        return _print_report(report, path), path, None, report
    p = cfg.prepare
    where = f"{path} as prepared (prepare: train {p.train_size}, validation {p.validation_size}, test {p.test_size})"
    report, splits = forecast(table, cfg)
    return _print_report(report, where), where, splits, report


@command
def cmd_validate(args: argparse.Namespace) -> int:
    """Run the Great Expectations suite (and drift) on prepared splits, or on one data file and the splits it makes.

    With --data, a file that passes is also split as `prepare` would split it (the configured sizes and seed) and
    those splits are checked as the pipeline's validate stage will check them: a class too small for the training
    sample is reported now, with the setting to change, not after preparing.
    """
    from graft.data import tables
    from graft.data.validate import run

    cfg = _cfg(args)
    if bool(args.data) == bool(args.splits):
        raise GraftError("give exactly one of --data FILE or --splits DIR")
    if args.data:
        passed, where, splits, report = _check_file(args.data, cfg, args.report, args.docs, not args.file_only)
    else:
        target = tables.read_target(args.splits).get("target")
        report = run(tables.read_splits(args.splits), cfg, args.splits, "train", args.report, args.docs,
                     target=target)
        passed, where, splits = _print_report(report, args.splits), args.splits, None
    if not passed:
        return 1
    print(f"{where}: all {len(report.checks)} checks passed" + (f"; report: {args.docs}/summary.html"
                                                                 if args.docs else ""))
    if splits:
        print(_split_counts(splits))
    return 0


def _show(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "null" if value is None else str(value)


@command
def cmd_init(args: argparse.Namespace) -> int:
    """Set params.yaml up for your data file: columns, labels, split sizes, class weights, model name.

    Reads the file, finds its text (or image), label and time columns when that is unambiguous (otherwise it lists
    the candidates: pass the --*-column flag), sizes the splits so that every class gets
    validate.min_rows_per_class training rows (checked with prepare's own split), turns on balanced class weights
    when the classes are imbalanced, and names the registry model after the file. Then it copies the file under
    data/raw/, pins it with `dvc add data/raw`, validates it as the pipeline will, and prints each decision with
    its reason. Comments and every other setting in params.yaml stay as they are; running it twice on the same file
    changes nothing. A file that cannot work is a one-line error, and params.yaml is left untouched.

    Next: make run (images: make run-image).
    """
    import yaml

    from graft.data import intake

    params_path = Path(args.params)
    if not params_path.is_file():
        raise GraftError(f"{params_path}: no such params file (--params)")
    text = params_path.read_text()
    params = yaml.safe_load(text)
    config.from_dict(params, str(params_path))  # the file itself must be valid before it is edited
    workspace = params_path.parent
    flags = {k: getattr(args, k) for k in ("text_column", "image_column", "label_column", "time_column")}
    plan, _ = intake.plan(Path(args.data), params, workspace, flags)
    new = intake.edited(text, plan.settings)
    change = intake.diff(text, new, params_path.as_posix())
    width = max(len(k) for k, _, _ in plan.settings)
    print(f"graft init: {args.data}: {plan.rows} rows of {plan.modality} data")
    for key, value, why in plan.settings:
        print(f"  {key:<{width}} : {_show(value)}  ({why})")
    cfg = config.from_dict(yaml.safe_load(new), str(params_path))
    if args.dry_run:
        print(change or f"{params_path}: no change", end="" if change else "\n")
        return 0
    # validate as the pipeline will before anything is written: a file that fails leaves params.yaml alone
    passed, where, splits, report = _check_file(str(args.data), cfg)
    if not passed:
        return 1
    copied = intake.place(Path(args.data), plan.dest)
    if change:
        tmp = params_path.with_name(f".{params_path.name}.tmp")
        tmp.write_text(new)
        tmp.replace(params_path)
    changed = sum(1 for line in change.splitlines() if line.startswith("+") and not line.startswith("+++"))
    print(f"{params_path}: " + (f"{changed} line(s) changed" if change else "unchanged")
          + (f"; data copied to {os.path.relpath(plan.dest)}" if copied else ""))
    _pin(workspace)
    print(f"{where}: all {len(report.checks)} checks passed")
    print(_split_counts(splits))
    print("next: make run" + ("" if workspace.resolve() == Path.cwd().resolve() else f" WS={workspace}"))
    return 0


def _pin(workspace: Path) -> None:
    """`dvc add data/raw` in the workspace (it rewrites data.dvc), when the workspace is in a DVC repository."""
    dvc = Path(sys.executable).with_name("dvc")
    if not any((d / ".dvc").is_dir() for d in (workspace.resolve(), *workspace.resolve().parents)):
        print("not in a DVC repository: pin data/raw yourself (dvc init; dvc add data/raw)")
        return
    pin = workspace / "data.dvc"
    before = pin.read_bytes() if pin.is_file() else None
    if before is None:  # a new workspace: data/raw is pinned by data.dvc, as `make data` expects
        pin.write_text("outs:\n- path: data/raw\n")
    res = subprocess.run([str(dvc if dvc.exists() else "dvc"), "add", "-q", "data/raw"], cwd=workspace,
                         capture_output=True, text=True)
    if res.returncode:
        raise GraftError(f"dvc add data/raw failed: {(res.stderr or res.stdout).strip().splitlines()[-1]}")
    if pin.is_file() and pin.read_bytes() == before:
        print("dvc add data/raw: data.dvc already pins this data")
    else:
        print("dvc add data/raw: data.dvc pins the new data (commit params.yaml and data.dvc)")

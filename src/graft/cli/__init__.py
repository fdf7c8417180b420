"""`graft <stage>`: parse arguments, load params.yaml, call the library, set the exit code.

Expected failures (bad input, failed checks) print one line per problem to stderr and exit 1, without a traceback.
Paths have no defaults on purpose: dvc.yaml (or the user) names them, so they are never hard-coded twice.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from graft import __version__
from graft.cli import data, moves, serving  # noqa: F401 (moves registers its commands)
from graft.cli.commands import COMMANDS
from graft.core import progress
from graft.core.errors import GraftError

# The pipeline's stages and other long work: a timestamped line on stderr when each starts and ends, with its wall time
TIMED = {"prepare", "validate", "select", "train", "baseline", "adapt", "selfcheck", "evaluate", "explain", "export",
         "gate", "report", "curve", "multitask"}


def os_error(exc: OSError) -> str:
    """One line for an OS error: the path(s), what the system said and the errno's name."""
    import errno
    import os

    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p)
    name = errno.errorcode.get(exc.errno or 0, "")
    said = exc.strerror or str(exc)
    if isinstance(exc, FileExistsError) and exc.filename and not os.path.isdir(exc.filename):
        said = "a file is where a folder is needed"
    return f"{where + ': ' if where else ''}{said}" + (f" ({name})" if name else "")


def _doc(name: str) -> str:
    """A subcommand's help text is its handler's docstring."""
    return COMMANDS[name].__doc__ or ""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="graft",
        description="Transfer learning as a production pipeline. Each subcommand is one stage; `dvc repro` and "
                    "the KFP pipeline run the same stages in order: prepare, validate, select, train, baseline, "
                    "adapt, selfcheck, evaluate, explain, export, gate.",
    )
    p.add_argument("--version", action="version", version=f"graft {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="STAGE")

    def stage(name: str, *args: tuple[str, str]) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=_doc(name), description=_doc(name))
        sp.add_argument("--params", default="params.yaml", help="params.yaml to read (default: %(default)s)")
        for flag, text in args:
            sp.add_argument(flag, required=True, help=text)
        return sp

    m = stage("materialize")
    m.add_argument("--out", help="where the raw file goes (default: data.raw from params.yaml)")
    f = stage("freshness")
    f.add_argument("--raw", help="raw data (default: data.raw from params.yaml)")
    f.add_argument("--out", help="write the decision JSON here (retrain, reason, data md5, params hash, commit)")
    stage("prepare", ("--raw", "raw table (.csv, .tsv, .parquet, .jsonl, .tab); images: class folders or .parquet"),
          ("--out", "folder for the split Parquet files"))
    v = stage("validate")
    v.add_argument("--data", help="a CSV, TSV, Parquet, JSON Lines or .tab file with text and label columns (images: "
                   "a folder of class folders, or a Parquet table of image bytes and labels)")
    v.add_argument("--file-only", action="store_true", help="with --data: check the file alone, not also the "
                   "splits prepare would make of it with the configured sizes")
    v.add_argument("--splits", help="a folder written by `graft prepare`")
    v.add_argument("--report", help="write the JSON report (each check: observed, threshold, passed) here")
    v.add_argument("--docs", help="write the Great Expectations Data Docs site and summary.html into this folder")
    stage("select", ("--splits", "prepared splits folder"), ("--out", "ranking JSON (metrics/select.json)"))
    fit_args = (("--splits", "prepared splits folder"), ("--selection", "select.json naming the backbone"),
                ("--out", "model folder to write"), ("--metrics", "training metrics JSON"))
    for name in ("train", "baseline"):
        stage(name, *fit_args).add_argument("--history", help="per-epoch losses and accuracies JSON (a DVC plot)")
    stage("adapt", ("--splits", "prepared splits folder (with data.target: target.parquet beside them)"),
          ("--selection", "select.json naming the backbone"), ("--out", "adapted model folder"),
          ("--metrics", "adaptation metrics JSON (metrics/adapt.json)"))
    stage("selfcheck", ("--splits", "prepared splits folder"), ("--selection", "select.json with the ranking"),
          ("--out", "folder for the runners-up models"), ("--metrics", "training metrics JSON"))
    stage("curve", ("--raw", "raw table (the same as prepare's)"), ("--selection", "select.json naming the backbone"),
          ("--size", "labeled training examples"), ("--init", "pretrained or scratch"), ("--out", "point JSON"))
    stage("curve-plot", ("--points", "folder of curve point JSON files"), ("--out", "plot JSON (plots/curve.json)"))
    stage("multitask", ("--out", "report JSON (metrics/multitask.json)"))
    e = stage("evaluate", ("--splits", "prepared splits folder"), ("--finetune", "fine-tuned model folder"),
              ("--scratch", "scratch model folder"), ("--out", "metrics JSON (metrics/evaluate.json)"),
              ("--confusion", "rows of (actual, predicted) for the confusion-matrix plot"))
    e.add_argument("--adapted", help="folder written by `graft adapt`: judged against the source-only model")
    e.add_argument("--selection", help="select.json: with --selfcheck, audit the ranking against test scores")
    e.add_argument("--selfcheck", help="folder written by `graft selfcheck`")
    x = stage("export", ("--model", "a trained PyTorch model folder (models/finetune)"),
              ("--splits", "prepared splits folder"), ("--out", "ONNX package folder"),
              ("--metrics", "parity metrics JSON"))
    x.add_argument("--adapted", help="the adapted model folder: exported instead when --evaluate chose it")
    x.add_argument("--evaluate", help="evaluate.json: its domains.chosen says which of the two models goes on")
    xp = sub.add_parser("explain", help=_doc("explain"), description=_doc("explain"),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    xp.add_argument("--params", default="params.yaml", help="params.yaml to read (default: %(default)s)")
    xp.add_argument("--model", help="a trained PyTorch model folder (models/finetune; not the ONNX package: "
                    "explanations need the gradients); `graft explain` without --stage")
    xp.add_argument("--input", help="a file of inputs, one text (image model: one image path) per line")
    xp.add_argument("--split", help="explain rows of this prepared split instead (with --splits; e.g. test)")
    xp.add_argument("--n", type=int, default=20, help="rows of --split to explain (default: %(default)s)")
    xp.add_argument("--steps", type=int, help="integrated-gradients steps (default: explain.steps)")
    xp.add_argument("--out", help="JSON lines to write (default: stdout); the stage: metrics/explain.json")
    xp.add_argument("--html", help="also write a page a person reads (words shaded, heat-maps overlaid)")
    xp.add_argument("--stage", action="store_true", help="run the pipeline's explain stage (needs --splits, "
                    "--finetune, --scratch, --out, --html; --adapted and --evaluate pick the model that goes on)")
    for flag, text in (("--splits", "prepared splits folder"), ("--finetune", "fine-tuned model folder"),
                       ("--scratch", "scratch model folder (the faithfulness anchor)"),
                       ("--adapted", "adapted model folder"), ("--evaluate", "evaluate.json (domains.chosen)"),
                       ("--lines", "the stage: every explained row as JSON lines here")):
        xp.add_argument(flag, help=text)
    g = stage("gate", ("--evaluate", "evaluate.json"), ("--export", "export metrics JSON"),
              ("--package", "ONNX package folder"), ("--splits", "prepared splits (for the data md5)"),
              ("--out", "verdict JSON (metrics/gate.json)"))
    g.add_argument("--no-register", action="store_true", help="decide only; never touch the registry")
    g.add_argument("--explain", help="explain.json: faithfulness joins the checks; registered with the version")
    g.add_argument("--explain-page", help="explain.html: registered with the version beside explain.json")
    pr = sub.add_parser("predict", help=_doc("predict"), description=_doc("predict"))
    pr.add_argument("--model", required=True, help="the ONNX package folder `graft export` writes (models/onnx; "
                    "not the PyTorch folder models/finetune)")
    pr.add_argument("--input", help="text file, one text (image package: one image path) per line (default: stdin)")
    pr.add_argument("--int8", action="store_true", help="use the int8 model (smaller, faster; gate-checked)")
    pr.add_argument("--batch-size", type=int, default=32, help="texts per ONNX Runtime call (default: %(default)s)")
    serving.add_parser(sub)
    data.add_parser(sub)
    pm = stage("promote", ("--reason", "why, recorded on the version and in the audit log"))
    pm.add_argument("--version", type=int, required=True, help="registered version to make the champion")
    rb = stage("rollback")
    rb.add_argument("--reason", default="rolled back by hand", help="recorded on the version and in the audit log")
    ap = stage("approve", ("--by", "who approves (recorded)"), ("--note", "why (recorded)"))
    ap.add_argument("--version", type=int, required=True, help="the challenger's version")
    rj = stage("reject", ("--by", "who rejects (recorded)"), ("--note", "why (recorded)"))
    rj.add_argument("--version", type=int, required=True, help="the challenger's version")
    ap.add_argument("--splits", default="data/prepared", help="prepared splits whose test rows re-check the "
                    "version before the champion moves (default: %(default)s)")
    for moving in (pm, rb):
        moving.add_argument("--splits", default="data/prepared", help="prepared splits whose test rows check the "
                            "version before the alias moves (default: %(default)s)")
        moving.add_argument("--by", help="who moves the alias, for the audit log (default: user@host)")
    stage("history")
    r = stage("report", ("--metrics-dir", "folder holding the stages' metrics JSON"),
              ("--out", "the run report to write (reports/run.html)"))
    r.add_argument("--splits", help="prepared splits (their manifest gives the data version)")
    r.add_argument("--index", help="the runs index to write (default: runs.html beside --out)")
    r.add_argument("--failed-since", type=float, metavar="EPOCH",
                   help="the run failed: leave out metrics written before this time (epoch seconds)")
    pl = sub.add_parser("pipeline", help=_doc("pipeline"), description=_doc("pipeline"), add_help=False)
    pl.add_argument("rest", nargs=argparse.REMAINDER, help="compile | run | submit | schedule, and their options")
    s = sub.add_parser("summary", help=_doc("summary"), description=_doc("summary"))
    s.add_argument("--metrics-dir", required=True, help="folder holding the stages' metrics JSON")
    s.add_argument("--package", required=True, help="ONNX package folder")
    s.add_argument("--failed-since", type=float, metavar="EPOCH",
                   help="the run failed: show only metrics written after this time (epoch seconds)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `graft` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["pipeline"]:  # its own sub-commands and options (--help included) go to the pipelines CLI
        argv = ["pipeline", "--", *argv[1:]]
    args = _parser().parse_args(argv)
    timed = args.command in TIMED
    started = time.monotonic()
    if timed:
        progress.line(f"graft {args.command}: started")
    try:
        code = COMMANDS[args.command](args)
        if timed:
            progress.line(f"graft {args.command}: {'done' if not code else f'exit {code}'} in "
                          f"{time.monotonic() - started:.1f} s")
        return code
    except GraftError as exc:
        print(f"graft {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # read-only or full disk, permissions: the path and the errno, no traceback
        print(f"graft {args.command}: error: {os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"graft {args.command}: interrupted; earlier outputs are unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

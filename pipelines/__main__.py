"""`python -m pipelines compile|run`: compile the KFP pipeline to YAML, or run it locally with kfp.local."""

import argparse
import sys
from pathlib import Path

DEFAULT_YAML = Path(__file__).parent / "compiled" / "graft_pipeline.yaml"
DEFAULT_CONFIGMAP = Path(__file__).parent.parent / "infra" / "k8s" / "configmap-params.yaml"


def local_config(params: str) -> dict:
    """params.yaml as a mapping, with project-relative paths made absolute for tasks that run elsewhere."""
    from graft import config

    raw = config.load(params).to_dict()
    root = Path(params).resolve().parent
    raw["data"]["raw"] = str((root / raw["data"]["raw"]).resolve())
    raw["validate"]["profile_dir"] = str((root / raw["validate"]["profile_dir"]).resolve())
    if raw["select"].get("feature_cache"):
        raw["select"]["feature_cache"] = str((root / raw["select"]["feature_cache"]).resolve())
    reg = raw["registry"]
    if reg["tracking_uri"].startswith("sqlite:///") and not reg["tracking_uri"].startswith("sqlite:////"):
        reg["tracking_uri"] = "sqlite:///" + str(root / reg["tracking_uri"].removeprefix("sqlite:///"))
    reg["artifact_location"] = str((root / reg["artifact_location"]).resolve())
    return raw


def params_configmap(params: str, out: Path = DEFAULT_CONFIGMAP) -> Path:
    """infra/k8s's ConfigMap holding params.yaml as is, for the scheduled run (regenerated with the YAML)."""
    import yaml

    class Literal(str):
        pass

    dumper = type("Dumper", (yaml.SafeDumper,), {})
    dumper.add_representer(Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "graft-params"},
           "data": {"params.yaml": Literal(Path(params).read_text())}}
    out.write_text("# Generated from params.yaml by `make kfp-compile`; a test fails when it is stale.\n"
                   + yaml.dump(doc, Dumper=dumper, sort_keys=False, width=120))
    return out


def compile_yaml(params: str, out: Path) -> Path:
    """Compile the pipeline with params.yaml as the default `config`."""
    from kfp import compiler

    from graft import config
    from pipelines.graft_pipeline import create_pipeline

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(create_pipeline(config.load(params).to_dict()), str(out))
    return out


def run_local(params: str, root: Path) -> Path:
    """Run the whole pipeline in this interpreter's environment with kfp.local's SubprocessRunner.

    Returns the run's folder (one sub-folder per task, holding its output artifacts).
    """
    from kfp import local

    from pipelines.graft_pipeline import create_pipeline

    cfg = local_config(params)
    root = root.resolve()
    before = set(root.glob("*")) if root.is_dir() else set()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    create_pipeline(cfg)(config=cfg)
    (run_dir,) = set(root.glob("*")) - before
    return run_dir


def local_summary(run_dir: Path, params: str) -> str:
    """The same summary as `make run` prints, read from a kfp.local run's artifacts."""
    from graft import config
    from graft.artifacts import read_json
    from graft.report import render

    def art(task: str, name: str):
        path = run_dir / task / name
        return read_json(path) if path.is_file() else None

    verdict = art("gate", "verdict")
    registered = art("register", "executor_output.json")
    if verdict is not None:
        reg = config.load(params).registry
        verdict["registered"] = registered and {
            "model_name": reg.model_name, "version": registered["parameterValues"]["Output"], "alias": reg.alias,
            "tracking_uri": local_config(params)["registry"]["tracking_uri"]}
    return render(art("select", "selection"), art("evaluate", "evaluation"), art("export", "parity"), verdict,
                  run_dir / "export" / "package", art("train", "metrics"))


def main(argv=None) -> int:
    """Parse the command line and run it."""
    p = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="write the compiled pipeline YAML")
    c.add_argument("--params", default="params.yaml")
    c.add_argument("--out", type=Path, default=DEFAULT_YAML)
    r = sub.add_parser("run", help="run the pipeline locally (kfp.local, SubprocessRunner)")
    r.add_argument("--params", default="params.yaml")
    r.add_argument("--root", type=Path, default=Path(".kfp-local"), help="where task artifacts go")
    args = p.parse_args(argv)
    if args.cmd == "compile":
        print(f"compiled: {compile_yaml(args.params, args.out)}")
        print(f"params ConfigMap: {params_configmap(args.params)}")
    else:
        run_dir = run_local(args.params, args.root)
        print(local_summary(run_dir, args.params), end="")
        print(f"task artifacts  : {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

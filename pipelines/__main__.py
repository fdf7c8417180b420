"""`python -m pipelines compile|run`: compile the KFP pipeline to YAML, or run it locally with kfp.local."""

import argparse
import sys
from pathlib import Path

DEFAULT_YAML = Path(__file__).parent / "compiled" / "graft_pipeline.yaml"


def local_config(params: str) -> dict:
    """params.yaml as a mapping, with project-relative paths made absolute for tasks that run elsewhere."""
    from graft import config

    raw = config.load(params).to_dict()
    root = Path(params).resolve().parent
    raw["data"]["raw"] = str((root / raw["data"]["raw"]).resolve())
    reg = raw["registry"]
    if reg["tracking_uri"].startswith("sqlite:///") and not reg["tracking_uri"].startswith("sqlite:////"):
        reg["tracking_uri"] = "sqlite:///" + str(root / reg["tracking_uri"].removeprefix("sqlite:///"))
    reg["artifact_location"] = str((root / reg["artifact_location"]).resolve())
    return raw


def compile_yaml(params: str, out: Path) -> Path:
    """Compile the pipeline with params.yaml as the default `config`."""
    from kfp import compiler

    from graft import config
    from pipelines.graft_pipeline import create_pipeline

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(create_pipeline(config.load(params).to_dict()), str(out))
    return out


def run_local(params: str, root: Path) -> None:
    """Run the whole pipeline in this interpreter's environment with kfp.local's SubprocessRunner."""
    from kfp import local

    from pipelines.graft_pipeline import create_pipeline

    cfg = local_config(params)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root.resolve()))
    create_pipeline(cfg)(config=cfg)


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
    else:
        run_local(args.params, args.root)
        print(f"kfp.local run finished; artifacts under {args.root.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

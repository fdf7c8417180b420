"""`python -m graft_kfp.pipelines compile|run`: compile the KFP pipeline to YAML, or run it locally with kfp.local."""

import argparse
import sys
from pathlib import Path

DEFAULT_YAML = Path(__file__).parent / "compiled" / "graft_pipeline.yaml"
DEFAULT_CONFIGMAP = Path(__file__).parent.parent / "infra" / "k8s" / "configmap-params.yaml"


def local_config(params: str) -> dict:
    """params.yaml as a mapping, with project-relative paths made absolute for tasks that run elsewhere."""
    from graft.core import config

    raw = config.load(params).to_dict()
    root = Path(params).resolve().parent
    raw["data"]["raw"] = str((root / raw["data"]["raw"]).resolve())
    for key, path in (raw["data"].get("target") or {}).items():  # the target domain's files
        raw["data"]["target"][key] = str((root / path).resolve())
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


def compile_yaml(params: str, out: Path, image: str | None = None) -> Path:
    """Compile the pipeline for a cluster with params.yaml as the default `config` (and `image` for every task)."""
    from graft_kfp.pipelines.graft_pipeline import create_pipeline
    from kfp import compiler

    from graft.core import config

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(create_pipeline(config.load(params).to_dict(), cluster=True), str(out))
    if image:  # every task runs the graft image: point them at the one you pushed
        from graft_kfp.components import BASE_IMAGE

        out.write_text(out.read_text().replace(f"image: {BASE_IMAGE}\n", f"image: {image}\n"))
    return out


def run_container(client, image: str, command: list[str], volumes: dict, **run_args) -> int:
    """kfp.local's container start, without its auto-remove race.

    kfp.local starts each task with `auto_remove=True`, then streams the logs and waits; under podman's Docker API
    the container is often gone by then and podman answers HTTP 500 where Docker says 404, which kfp.local does
    not expect (about one run in three). Here the container is kept until its exit code is read, then removed.
    """
    run_args.pop("auto_remove", None)
    container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                      volumes=volumes, auto_remove=False, **run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(), end="")
        return int(container.wait()["StatusCode"])
    finally:
        try:
            container.remove(force=True)
        except Exception:  # noqa: BLE001 (already gone: nothing left to clean)
            pass


def run_local(params: str, root: Path, engine: str = "subprocess") -> Path:
    """Run the whole pipeline here with kfp.local, in this interpreter or each task in the graft image.

    `subprocess`: this virtualenv; `docker`: the graft image through a Docker-compatible API (DOCKER_HOST, e.g.
    podman's socket). With `docker` only the pipeline root is shared with the containers: the data, registry and
    caches the params name must lie inside it. Returns the run's folder (one sub-folder per task, its artifacts).
    """
    from graft_kfp.pipelines.graft_pipeline import create_pipeline
    from kfp import local

    cfg = local_config(params)
    root = root.resolve()
    before = set(root.glob("*")) if root.is_dir() else set()
    if engine == "docker":
        from kfp.local import docker_task_handler

        docker_task_handler.run_docker_container = run_container
        local.init(runner=local.DockerRunner(), pipeline_root=str(root))
    else:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    create_pipeline(cfg)(config=cfg)
    (run_dir,) = set(root.glob("*")) - before
    return run_dir


def local_summary(run_dir: Path, params: str) -> str:
    """The same summary as `make run` prints, read from a kfp.local run's artifacts."""
    from graft.core import config
    from graft.core.artifacts import read_json
    from graft.report import render

    def art(task: str, name: str):
        path = run_dir / task / name
        return read_json(path) if path.is_file() else None

    verdict = art("gate", "verdict")
    registered = art("register", "executor_output.json")
    if verdict is not None:
        reg = config.load(params).registry
        verdict["registered"] = registered and {
            "model_name": reg.model_name, "version": registered["parameterValues"]["Output"],
            "alias": "challenger" if config.load(params).gate.approval == "required" else reg.alias,
            "tracking_uri": local_config(params)["registry"]["tracking_uri"]}
    return render(art("select", "selection"), art("evaluate", "evaluation"), art("export", "parity"), verdict,
                  run_dir / "export" / "package", art("train", "metrics"))


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Compile the KFP pipeline, run it locally with kfp.local, "
                                "or submit / schedule it on a Kubeflow Pipelines cluster.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="write the compiled pipeline YAML (and infra/k8s's params ConfigMap and serving "
                       "manifests)")
    c.add_argument("--params", default="params.yaml")
    c.add_argument("--out", type=Path, default=DEFAULT_YAML)
    c.add_argument("--image", help="the graft image every task runs, e.g. REGISTRY/graft:0.1.0 (default: "
                   "components.BASE_IMAGE, what `make image` builds)")
    r = sub.add_parser("run", help="run the pipeline here with kfp.local (SubprocessRunner: no container engine)")
    r.add_argument("--params", default="params.yaml")
    r.add_argument("--root", type=Path, default=Path(".kfp-local"), help="where task artifacts go")
    r.add_argument("--local", action="store_true", help="(the only mode of `run`; accepted for clarity)")
    r.add_argument("--engine", choices=("subprocess", "docker"), default="subprocess",
                   help="subprocess: tasks run in this virtualenv (no container engine); docker: each task in the "
                        "graft image through DOCKER_HOST (podman's socket works)")
    for name, text in (("submit", "start one run on a KFP cluster"),
                       ("schedule", "create a recurring run on a KFP cluster (scheduled retraining)")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--host", required=True, help="KFP API URL, e.g. http://ml-pipeline.kubeflow:8888")
        s.add_argument("--params", default="params.yaml", help="passed as the pipeline's `config` argument")
        s.add_argument("--package", type=Path, default=DEFAULT_YAML, help="compiled pipeline (default: %(default)s)")
        s.add_argument("--experiment", default="graft", help="KFP experiment (default: %(default)s)")
        s.add_argument("--namespace", help="Kubeflow profile namespace (multi-user clusters)")
        if name == "schedule":
            s.add_argument("--cron", required=True, help="when: 5-field cron, e.g. '0 3 * * 1' (Mondays 03:00)")
            s.add_argument("--name", default="graft-retrain", help="recurring run name (default: %(default)s)")
    return p


def main(argv=None, prog: str = "python -m graft_kfp.pipelines") -> int:
    """Parse the command line and run it."""
    args = _parser(prog).parse_args(argv)
    if args.cmd == "compile":
        print(f"compiled: {compile_yaml(args.params, args.out, args.image)}")
        print(f"params ConfigMap: {params_configmap(args.params)}")
        from graft_kfp.pipelines import serving

        print(f"serving manifests: {', '.join(str(p) for p in serving.write(args.params))}")
    elif args.cmd == "run":
        run_dir = run_local(args.params, args.root, args.engine)
        print(local_summary(run_dir, args.params), end="")
        print(f"task artifacts  : {run_dir}")
    elif args.cmd == "submit":
        from graft_kfp.pipelines.cluster import submit

        print(f"submitted run {submit(args.host, args.package, args.params, args.experiment, None, args.namespace)}")
    else:
        from graft_kfp.pipelines.cluster import schedule

        job = schedule(args.host, args.package, args.params, args.experiment, args.cron, args.name, args.namespace)
        print(f"recurring run {job} created: {args.cron} ({args.experiment})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

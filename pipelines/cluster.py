"""Talking to a Kubeflow Pipelines cluster: submit one run, or create a recurring run (scheduled retraining).

Both send the compiled pipeline (pipelines/compiled/graft_pipeline.yaml) with a params file as its `config`
argument, through `kfp.Client`. In a pod, the client authenticates with the projected service-account token that
KF_PIPELINES_SA_TOKEN_PATH points to (infra/k8s/cronjob.yaml mounts one).
"""

from __future__ import annotations

from pathlib import Path


def client(host: str, namespace: str | None = None):
    """A kfp.Client for `host` (http[s]://...); an unreachable or failing API is a one-line ConnectionError."""
    import kfp

    if not host.startswith(("http://", "https://")):
        raise ValueError(f"--host {host!r}: give the KFP API URL with its scheme, e.g. http://ml-pipeline:8888")
    return _api(host, lambda: kfp.Client(host=host, namespace=namespace))


def _api(host: str, call):
    """Run a KFP API call; turn its transport or API failure into one ConnectionError line."""
    try:
        return call()
    except Exception as exc:  # kfp_server_api.ApiException, urllib3 errors
        raise ConnectionError(f"KFP API {host}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def kfp_cron(expr: str) -> str:
    """A standard 5-field cron expression as KFP's 6-field one (seconds first); a 6-field one is kept."""
    fields = expr.split()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise ValueError(f"--cron {expr!r}: expected 5 fields (minute hour day month weekday), or 6 with seconds first")


def arguments(params: str) -> dict:
    """The pipeline's arguments: the validated params file as `config`."""
    from graft.core import config

    return {"config": config.load(params).to_dict()}


def submit(host: str, package: str | Path, params: str, experiment: str, run_name: str | None = None,
           namespace: str | None = None) -> str:
    """Start one run of the compiled pipeline; return its run id."""
    args, kfp_client = arguments(params), client(host, namespace)
    run = _api(host, lambda: kfp_client.create_run_from_pipeline_package(
        str(package), arguments=args, run_name=run_name, experiment_name=experiment, namespace=namespace,
        enable_caching=True))
    return run.run_id


def schedule(host: str, package: str | Path, params: str, experiment: str, cron: str, name: str,
             namespace: str | None = None) -> str:
    """Create a recurring run (one at a time, no catch-up of missed slots); return its id."""
    when, args, kfp_client = kfp_cron(cron), arguments(params), client(host, namespace)
    exp = _api(host, lambda: kfp_client.create_experiment(name=experiment, namespace=namespace))
    job = _api(host, lambda: kfp_client.create_recurring_run(
        experiment_id=exp.experiment_id, job_name=name, cron_expression=when, max_concurrency=1, no_catchup=True,
        params=args, pipeline_package_path=str(package), enable_caching=True))
    return job.recurring_run_id

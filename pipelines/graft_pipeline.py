"""The graft DAG as a KFP v2 pipeline factory: wiring and the promotion condition only, no ML logic."""

from graft_kfp.components.adapt.component import adapt
from graft_kfp.components.baseline.component import baseline
from graft_kfp.components.evaluate.component import evaluate
from graft_kfp.components.explain.component import explain
from graft_kfp.components.export.component import export
from graft_kfp.components.freshness.component import freshness
from graft_kfp.components.gate.component import gate
from graft_kfp.components.prepare.component import prepare
from graft_kfp.components.register.component import register
from graft_kfp.components.report.component import report
from graft_kfp.components.select.component import select
from graft_kfp.components.selfcheck.component import selfcheck
from graft_kfp.components.train.component import train
from graft_kfp.components.validate.component import validate
from kfp import dsl

PIPELINE_NAME = "graft-transfer"


MLFLOW_TASKS = ("freshness", "evaluate", "gate", "register")  # the tasks that read or write the registry
TRAINING_TASKS = ("train", "baseline", "adapt", "selfcheck", "explain")  # the tasks that backpropagate
MLFLOW_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL")


def place(task, name: str, kube: dict):
    """Cluster settings of one task from params `kubeflow`: resources, accelerator, cache PVC, secret, scheduling."""
    from kfp import kubernetes

    r = {**kube["resources"].get("default", {}), **kube["resources"].get(name, {})}
    task.set_cpu_request(r["cpu_request"]).set_cpu_limit(r["cpu_limit"])
    task.set_memory_request(r["memory_request"]).set_memory_limit(r["memory_limit"])
    if kube["gpu_for_training"] and name in TRAINING_TASKS:
        task.set_accelerator_type(kube["accelerator_type"]).set_accelerator_limit(1)
    if kube.get("cache_pvc"):
        kubernetes.mount_pvc(task, pvc_name=kube["cache_pvc"], mount_path=kube["cache_mount"])
    if kube.get("mlflow_secret") and name in MLFLOW_TASKS:
        kubernetes.use_secret_as_env(task, secret_name=kube["mlflow_secret"],
                                     secret_key_to_env={k: k for k in MLFLOW_KEYS})
    for key, value in kube["node_selector"].items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for t in kube["tolerations"]:
        kubernetes.add_toleration(task, key=t["key"], operator=t.get("operator", "Equal"), value=t.get("value"),
                                  effect=t.get("effect"))
    return task


def create_pipeline(default_config: dict, cluster: bool = False):
    """Return the pipeline function; `default_config` (params.yaml as a mapping) becomes its default `config`.

    `cluster` applies the `kubeflow` section (resources, accelerator, PVC, secret, node selector, tolerations) to
    every task: for the compiled YAML, not for kfp.local.
    """
    from graft.core.config import from_dict

    kube = from_dict(default_config).kubeflow.model_dump()

    def on(task, name: str):
        return place(task, name, kube) if cluster else task

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Validate data, select a backbone, fine-tune it, a scratch baseline, an adapted model "
                    "(train.adapt) and selection's runners-up, evaluate, explain, export to ONNX, and register the "
                    "model only if the gate passes.",
    )
    def graft_pipeline(config: dict = default_config, source: str = ""):
        fresh = on(freshness(config=config, source=source), "freshness")
        # "no new data" (the champion's data, params and code): nothing below runs, the run succeeds.
        with dsl.If(fresh.outputs["Output"] != "", name="new-data"):
            prep = on(prepare(config=config, source=source, data_md5=fresh.outputs["Output"]), "prepare")
            splits = prep.outputs["splits"]
            checked = on(validate(config=config, splits=splits), "validate")
            chosen = on(select(config=config, splits=splits).after(checked), "select")
            finetuned = on(train(config=config, splits=splits, selection=chosen.outputs["selection"]), "train")
            scratch = on(baseline(config=config, splits=splits, selection=chosen.outputs["selection"]), "baseline")
            adapted = on(adapt(config=config, splits=splits, selection=chosen.outputs["selection"]), "adapt")
            audit = on(selfcheck(config=config, splits=splits, selection=chosen.outputs["selection"]), "selfcheck")
            scored = on(evaluate(config=config, splits=splits, finetune=finetuned.outputs["model"],
                                 scratch=scratch.outputs["model"], adapted=adapted.outputs["model"],
                                 selection=chosen.outputs["selection"],
                                 selfcheck=audit.outputs["models"]), "evaluate")
            explained = on(explain(config=config, splits=splits, finetune=finetuned.outputs["model"],
                                   scratch=scratch.outputs["model"], adapted=adapted.outputs["model"],
                                   evaluation=scored.outputs["evaluation"]), "explain")
            exported = on(export(config=config, model=finetuned.outputs["model"], adapted=adapted.outputs["model"],
                                 evaluation=scored.outputs["evaluation"], splits=splits), "export")
            verdict = on(gate(config=config, splits=splits, evaluation=scored.outputs["evaluation"],
                              parity=exported.outputs["parity"], package=exported.outputs["package"],
                              explanation=explained.outputs["explanation"]), "gate")
            on(report(config=config, splits=splits, validation=checked.outputs["report"],
                      selection=chosen.outputs["selection"], trained=finetuned.outputs["metrics"],
                      baseline=scratch.outputs["metrics"], evaluation=scored.outputs["evaluation"],
                      parity=exported.outputs["parity"], verdict=verdict.outputs["verdict"],
                      explanation=explained.outputs["explanation"]), "report")
            # A single bool return (not a NamedTuple): kfp.local resolves conditions on `<task>-Output` channels.
            with dsl.If(verdict.outputs["Output"] == True, name="promote"):  # noqa: E712 (KFP condition syntax)
                on(register(config=config, package=exported.outputs["package"], splits=splits,
                            evaluation=scored.outputs["evaluation"], parity=exported.outputs["parity"],
                            verdict=verdict.outputs["verdict"], explanation=explained.outputs["explanation"],
                            page=explained.outputs["page"]), "register")

    return graft_pipeline



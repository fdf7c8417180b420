"""`evaluate`: fine-tuned vs scratch on the same held-out test split."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate(config: dict, splits: Input[Dataset], finetune: Input[Model], scratch: Input[Model],
             adapted: Input[Model], selection: Input[Artifact], selfcheck: Input[Model], evaluation: Output[Metrics],
             confusion: Output[ClassificationMetrics]):
    """Score the models (per domain with a target) and audit selection; the evaluation feeds export and the gate."""
    from graft.core import config as gc
    from graft.evaluate import run

    result = run(splits.path, finetune.path, scratch.path, gc.from_dict(config), evaluation.path,
                 selection=selection.path, runners_up=selfcheck.path, adapted=adapted.path)
    for name in ("finetune", "scratch", "classical"):
        for key in ("accuracy", "macro_f1"):
            evaluation.log_metric(f"{name}_{key}", result[name][key])
    for domain, scored in (result.get("domains") or {}).items():
        if domain in ("source", "target") and scored:
            for name, s in scored.items():
                evaluation.log_metric(f"{domain}_{name}_macro_f1", s["macro_f1"])
    if result["selfcheck"]["kendall_tau"] is not None:
        evaluation.log_metric("selfcheck_kendall_tau", result["selfcheck"]["kendall_tau"])
    confusion.log_confusion_matrix(result["labels"], result["finetune"]["confusion_matrix"])
    curve = result["finetune"].get("roc")  # binary tasks: the ROC of the second label as positive
    if curve:
        confusion.log_roc_curve(curve["fpr"], curve["tpr"], curve["thresholds"])
        evaluation.log_metric("finetune_roc_auc", curve["auc"])

"""`explain`: attributions of a test sample by the model that goes on, their faithfulness, and a page."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def explain(config: dict, splits: Input[Dataset], finetune: Input[Model], scratch: Input[Model],
            adapted: Input[Model], evaluation: Input[Metrics], explanation: Output[Metrics], page: Output[HTML]):
    """Explain the chosen model (evaluate's domains.chosen) and the scratch anchor; log the deletion test."""
    from graft import explain as ex
    from graft.core import config as gc

    result = ex.run(splits.path, finetune.path, scratch.path, gc.from_dict(config), explanation.path, page.path,
                    adapted.path, evaluation.path)
    for name, f in result["faithfulness"].items():
        explanation.log_metric(f"{name}_deletion_top_drop", f["top_drop"])
        explanation.log_metric(f"{name}_deletion_random_drop", f["random_drop"])
        if f["ratio"] is not None:
            explanation.log_metric(f"{name}_deletion_ratio", f["ratio"])
        if f["completeness"]["share"] is not None:
            explanation.log_metric(f"{name}_completeness", f["completeness"]["share"])

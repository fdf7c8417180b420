"""`selfcheck`: Fine-tune selection's runners-up so `evaluate` can audit the ranking."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def selfcheck(config: dict, splits: Input[Dataset], selection: Input[Artifact], models: Output[Model],
              metrics: Output[Metrics]):
    """Fine-tune the eligible candidates ranked 2..selfcheck.top_n with the same loop and budget as `train`."""
    from graft.core import config as gc
    from graft.select.selfcheck import run

    result = run(splits.path, selection.path, models.path, gc.from_dict(config), metrics.path)
    metrics.log_metric("runners_up", len(result["trained"]))
    for t in result["trained"]:
        metrics.log_metric(f"{t['name']}_val_macro_f1", t["val_macro_f1"])
    models.metadata.update({"top_n": result["top_n"], "names": [t["name"] for t in result["trained"]]})

"""`adapt`: the selected backbone fine-tuned with train.adapt on the target domain's unlabeled inputs."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def adapt(config: dict, splits: Input[Dataset], selection: Input[Artifact], model: Output[Model],
          metrics: Output[Metrics]):
    """train.adapt beside the source-only model (same budget); with adapt none the model folder holds only a note."""
    from graft import train
    from graft.core import config as gc

    result = train.adapt_run(splits.path, selection.path, model.path, gc.from_dict(config), metrics.path)
    model.metadata.update({"method": result["method"]})
    if result.get("run"):
        for key in ("val_accuracy", "val_macro_f1", "seconds"):
            metrics.log_metric(key, result["run"][key])

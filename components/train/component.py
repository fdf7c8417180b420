"""`train`: Fine-tune the selected pretrained backbone."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train(config: dict, splits: Input[Dataset], selection: Input[Artifact], model: Output[Model],
          metrics: Output[Metrics]):
    """Fine-tune the selected pretrained backbone (`init_from=pretrained`)."""
    from graft import config as gc
    from graft.train import run

    result = run(splits.path, selection.path, model.path, gc.from_dict(config), "pretrained", metrics.path)
    for key in ("val_accuracy", "val_macro_f1", "seconds"):
        metrics.log_metric(key, result[key])
    model.metadata.update({"backbone": result["backbone"], "init_from": "pretrained"})

"""`baseline`: Train the selected architecture from random weights, same budget."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def baseline(config: dict, splits: Input[Dataset], selection: Input[Artifact], model: Output[Model],
             metrics: Output[Metrics]):
    """Train the selected architecture from random weights, same budget (`init_from=scratch`)."""
    from graft import train
    from graft.core import config as gc

    result = train.run(splits.path, selection.path, model.path, gc.from_dict(config), "scratch", metrics.path)
    for key in ("val_accuracy", "val_macro_f1", "seconds"):
        metrics.log_metric(key, result[key])
    model.metadata.update({"backbone": result["backbone"], "init_from": "scratch"})

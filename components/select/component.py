"""`select`: rank the candidate backbones; the selection JSON feeds training."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def select(config: dict, splits: Input[Dataset], selection: Output[Artifact], ranking: Output[Markdown]) -> str:
    """Score every candidate; return the selected backbone's name."""
    from graft import select as stage
    from graft.core import config as gc

    result = stage.run(splits.path, gc.from_dict(config), selection.path, ranking.path)
    selection.metadata["selected"] = result["selected"]
    return result["selected"]

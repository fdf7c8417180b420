"""`select`: rank the candidate backbones; the selection JSON feeds training."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def select(config: dict, splits: Input[Dataset], selection: Output[Artifact], ranking: Output[Markdown]) -> str:
    """Score every candidate; return the selected backbone's name."""
    import json

    from graft import config as gc
    from graft import select as sel
    from graft.data import read_splits

    result = sel.rank(read_splits(splits.path)["train"], gc.from_dict(config))
    with open(selection.path, "w") as fh:
        json.dump(result, fh)
    with open(ranking.path, "w") as fh:
        fh.write(sel.markdown(result))
    selection.metadata["selected"] = result["selected"]
    return result["selected"]

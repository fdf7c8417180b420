"""`register`: put a gated package in the MLflow registry and move the champion alias to it."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register(config: dict, package: Input[Model], splits: Input[Dataset], evaluation: Input[Metrics],
             parity: Input[Metrics], verdict: Input[Metrics]) -> int:
    """Register the package with its lineage; return the new model version."""
    import json

    from graft import config as gc
    from graft.registry import promote

    docs = []
    for art in (evaluation, parity, verdict):
        with open(art.path) as fh:
            docs.append(json.load(fh))
    return promote(package.path, splits.path, gc.from_dict(config), *docs)["version"]

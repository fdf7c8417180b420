"""`register`: put a gated package in the MLflow registry and move the champion alias to it."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register(config: dict, package: Input[Model], splits: Input[Dataset], evaluation: Input[Metrics],
             parity: Input[Metrics], verdict: Input[Metrics]) -> int:
    """Register the package with its lineage; return the new model version."""
    from graft.core import config as gc
    from graft.core import outputs
    from graft.promote import registry

    docs = [outputs.read(art.path, kind) for art, kind in ((evaluation, "evaluate"), (parity, "export"),
                                                            (verdict, "gate"))]
    return registry.promote(package.path, splits.path, gc.from_dict(config), *docs)["version"]

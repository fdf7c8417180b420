"""`register`: put a gated package in the MLflow registry and move the champion alias to it."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register(config: dict, package: Input[Model], splits: Input[Dataset], evaluation: Input[Metrics],
             parity: Input[Metrics], verdict: Input[Metrics], explanation: Input[Metrics], page: Input[HTML]) -> int:
    """Register the package with its lineage and its explanations; return the new model version."""
    import shutil
    import tempfile
    from pathlib import Path

    from graft.core import config as gc
    from graft.core import outputs
    from graft.promote import registry

    docs = [outputs.read(art.path, kind) for art, kind in ((evaluation, "evaluate"), (parity, "export"),
                                                            (verdict, "gate"))]
    explained = outputs.read(explanation.path, "explain")
    with tempfile.TemporaryDirectory() as tmp:  # registered under their stage names, as `graft gate` does
        files = [Path(tmp) / "explain.json", Path(tmp) / "explain.html"]
        shutil.copy(explanation.path, files[0])
        shutil.copy(page.path, files[1])
        return registry.promote(package.path, splits.path, gc.from_dict(config), *docs, explained, files)["version"]

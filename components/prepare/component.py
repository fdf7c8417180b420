"""`prepare`: raw table -> train/validation/test splits (a Dataset folder)."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def prepare(config: dict, source: str, splits: Output[Dataset], data_md5: str = ""):
    """Clean and split the raw table at `source` (empty: params `data.raw`).

    `data_md5` (from `freshness`) is not read here: as an input it makes KFP's cache key follow the data's content,
    so a changed file at the same path misses the cache and an unchanged one hits it.
    """
    from graft.core import config as gc
    from graft.data import prepare

    cfg = gc.from_dict(config)
    counts = prepare.run(source or cfg.data.raw, splits.path, cfg)
    splits.metadata.update({f"{name}_rows": n for name, n in counts.items()} | {"data_md5": data_md5})

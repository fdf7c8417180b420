"""`prepare`: raw table -> train/validation/test splits (a Dataset folder)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def prepare(config: dict, source: str, splits: Output[Dataset]):
    """Clean and split the raw table at `source` (empty: params `data.raw`)."""
    from graft import config as gc
    from graft.prepare import prepare as run

    cfg = gc.from_dict(config)
    counts = run(source or cfg.data.raw, splits.path, cfg)
    splits.metadata.update({f"{name}_rows": n for name, n in counts.items()})

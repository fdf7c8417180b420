"""`validate`: the Great Expectations suite on the splits; a failure stops the pipeline."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def validate(config: dict, splits: Input[Dataset], report: Output[Metrics]):
    """Validate the splits; raise (one line per failed check) so nothing downstream runs."""
    import json

    from graft import config as gc
    from graft.data import read_splits
    from graft.validate import validate_tables

    result = validate_tables(read_splits(splits.path), gc.from_dict(config), "train")
    with open(report.path, "w") as fh:
        json.dump(result.to_dict(), fh)
    report.log_metric("checks", len(result.checks))
    report.log_metric("failed", sum(not c.passed for c in result.checks))
    if not result.passed:
        raise RuntimeError("data validation failed:\n" + "\n".join(result.failures("splits")))

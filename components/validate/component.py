"""`validate`: the Great Expectations suite on the splits; a failure stops the pipeline."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate(config: dict, splits: Input[Dataset], report: Output[Metrics], docs: Output[HTML]):
    """Validate the splits, their drift and skew; raise (one line per failed check) so nothing downstream runs."""
    import shutil
    import tempfile

    from graft.core import config as gc
    from graft.data.tables import read_splits, read_target
    from graft.data.validate import run

    with tempfile.TemporaryDirectory() as tmp:
        result = run(read_splits(splits.path), gc.from_dict(config), "splits", "train", report.path, f"{tmp}/site",
                     target=read_target(splits.path).get("target"))
        shutil.copy(f"{tmp}/site/summary.html", docs.path)  # one file: the checks and the embedded Data Docs
    report.log_metric("checks", len(result.checks))
    report.log_metric("failed", sum(not c.passed for c in result.checks))
    if not result.passed:
        raise RuntimeError("data validation failed:\n" + "\n".join(result.failures("splits")))

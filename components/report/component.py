"""`report`: the run's self-contained HTML report for the KFP UI (the same page `graft report` writes)."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def report(config: dict, splits: Input[Dataset], validation: Input[Metrics], selection: Input[Artifact],
           trained: Input[Metrics], baseline: Input[Metrics], evaluation: Input[Metrics], parity: Input[Metrics],
           verdict: Input[Metrics], explanation: Input[Metrics], page: Output[HTML]):
    """Lay the stage outputs out as `graft report` reads them, and render the page."""
    import shutil
    import tempfile
    from pathlib import Path

    from graft import report as pages
    from graft.core import config as gc

    with tempfile.TemporaryDirectory() as tmp:
        for name, art in (("validate", validation), ("select", selection), ("train", trained),
                          ("baseline", baseline), ("evaluate", evaluation), ("explain", explanation),
                          ("export", parity), ("gate", verdict)):
            shutil.copy(art.path, Path(tmp) / f"{name}.json")
        pages.report(gc.from_dict(config), pages.collect(tmp, splits.path), page.path)

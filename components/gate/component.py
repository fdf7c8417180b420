"""`gate`: the promotion verdict; the pipeline registers only under `dsl.If(passed)`."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate(config: dict, splits: Input[Dataset], evaluation: Input[Metrics], parity: Input[Metrics],
         package: Input[Model], explanation: Input[Metrics], verdict: Output[Metrics],
         table: Output[Markdown]) -> bool:
    """Apply the same policy as `graft gate` (DVC); return whether the candidate may be promoted.

    A refusal is recorded as an MLflow run (no model version), so the runs index shows every retraining.
    """
    from graft.core import config as gc
    from graft.promote import gate

    # registering is the `register` task's job, under dsl.If(passed); a refusal is recorded here
    result = gate.run(evaluation.path, parity.path, package.path, splits.path, gc.from_dict(config), verdict.path,
                      table.path, register=False, explanation=explanation.path)
    verdict.log_metric("passed", float(result["passed"]))
    return result["passed"]

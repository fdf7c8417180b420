"""`gate`: the promotion verdict; the pipeline registers only under `dsl.If(passed)`."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate(config: dict, splits: Input[Dataset], evaluation: Input[Metrics], parity: Input[Metrics],
         package: Input[Model], verdict: Output[Metrics], table: Output[Markdown]) -> bool:
    """Apply the same policy as `graft gate` (DVC); return whether the candidate may be promoted.

    A refusal is recorded as an MLflow run (no model version), so the runs index shows every retraining.
    """
    import json

    from graft import config as gc
    from graft import gate as policy
    from graft.registry import record_refusal

    cfg = gc.from_dict(config)
    with open(evaluation.path) as ev, open(parity.path) as pa:
        measured = json.load(ev), json.load(pa)
    result = policy.decide(*measured, cfg.gate)
    if not result["passed"]:
        result["recorded_run"] = record_refusal(splits.path, cfg, *measured, result, package.path)
    with open(verdict.path, "w") as fh:
        json.dump(result, fh)
    with open(table.path, "w") as fh:
        fh.write(policy.markdown(result))
    verdict.log_metric("passed", float(result["passed"]))
    return result["passed"]

"""`gate`: the promotion verdict; the pipeline registers only under `dsl.If(passed)`."""

from kfp import dsl
from kfp.dsl import Input, Markdown, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def gate(config: dict, evaluation: Input[Metrics], parity: Input[Metrics], verdict: Output[Metrics],
         table: Output[Markdown]) -> bool:
    """Apply the same policy as `graft gate` (DVC); return whether the candidate may be promoted."""
    import json

    from graft import config as gc
    from graft import gate as policy

    with open(evaluation.path) as ev, open(parity.path) as pa:
        result = policy.decide(json.load(ev), json.load(pa), gc.from_dict(config).gate)
    with open(verdict.path, "w") as fh:
        json.dump(result, fh)
    with open(table.path, "w") as fh:
        fh.write(policy.markdown(result))
    verdict.log_metric("passed", float(result["passed"]))
    return result["passed"]

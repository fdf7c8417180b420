"""`export`: ONNX package of the chosen model (fine-tuned, or adapted), with parity proven on the test split."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def export(config: dict, model: Input[Model], adapted: Input[Model], evaluation: Input[Metrics],
           splits: Input[Dataset], package: Output[Model], parity: Output[Metrics]):
    """Export the model evaluate chose (source-only or adapted) to ONNX and record its parity on the test split."""
    from graft.core import config as gc
    from graft.serve.export import pick, run

    chosen, why = pick(model.path, adapted.path, evaluation.path)
    result = run(chosen, splits.path, gc.from_dict(config), package.path, parity.path)
    package.metadata["chosen"] = "adapted" if chosen == adapted.path else "source_only"
    for name in ("fp32", "int8"):
        for key in ("agreement", "max_abs_diff", "accuracy"):
            parity.log_metric(f"{name}_{key}", result[name][key])
        parity.log_metric(f"{name}_size_mb", result["size_mb"][name])
    package.metadata.update({"format": "onnx", "opset": result["opset"]})

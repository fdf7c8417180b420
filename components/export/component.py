"""`export`: ONNX package of the fine-tuned model, with parity proven on the test split."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def export(config: dict, model: Input[Model], splits: Input[Dataset], package: Output[Model],
           parity: Output[Metrics]):
    """Export to ONNX and record max |logit diff| and label agreement with PyTorch."""
    from graft import config as gc
    from graft.export import run

    result = run(model.path, splits.path, gc.from_dict(config), package.path, parity.path)
    for key in ("agreement", "max_abs_diff", "onnx_accuracy", "size_mb"):
        parity.log_metric(key, result[key])
    package.metadata.update({"format": "onnx", "opset": result["opset"]})

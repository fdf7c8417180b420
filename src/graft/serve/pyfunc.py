"""graft's MLflow model: a registered version loads with `mlflow.pyfunc.load_model`, predicting as `graft predict`.

The registered artifact `model/` is an MLflow model folder: `MLmodel`, its environment files and the ONNX package
under `data/`. Its python_function flavor names this module as the loader (`loader_module`), so loading it imports
no torch and no pickled class: `_load_pyfunc` opens the package with the same `Package` (ONNX Runtime) as
`graft predict` and `graft serve`. `mlflow models serve --env-manager local`, MLflow's evaluate and KServe's MLflow
runtime can use it wherever graft is installed.

Input: a DataFrame with one column named as the modality's served input (`text`; images: `image`, each value the
file's bytes or their base64 text), or a list of such values. Output: a DataFrame with `label` and one
`probability_<class>` column per class.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import numpy as np

from graft.core.config import ServeConfig
from graft.core.errors import GraftError
from graft.serve.predict import MODEL_META, Package, softmax

LOADER = "graft.serve.pyfunc"
BATCH = 32


class Model:
    """What `mlflow.pyfunc.load_model` hands back inside its PyFuncModel: `predict(DataFrame) -> DataFrame`."""

    def __init__(self, package: Package):
        self.package, self.limits = package, ServeConfig()

    def _item(self, value):
        modality = self.package.modality
        if isinstance(value, str):
            try:
                value = base64.b64decode(value, validate=True) if modality.wire_base64 else value.encode("utf-8")
            except (binascii.Error, ValueError):
                raise GraftError(f"a {modality.wire_name!r} value must be the file's bytes or their base64 text"
                                 ) from None
        return modality.wire_item(bytes(value), self.limits)

    def predict(self, model_input, params: dict | None = None):
        """Labels and class probabilities, one row per input row."""
        import pandas as pd

        name = self.package.modality.wire_name
        if isinstance(model_input, pd.DataFrame):
            if name not in model_input.columns:
                raise GraftError(f"the input needs a column {name!r} (got {list(model_input.columns)})")
            values = model_input[name].tolist()
        else:
            values = list(model_input)
        items = [self._item(v) for v in values]
        logits = np.concatenate([self.package.logits(items[i:i + BATCH]) for i in range(0, len(items), BATCH)]
                                ) if items else np.zeros((0, len(self.package.labels)), np.float32)
        p = softmax(logits)
        labels = self.package.labels
        return pd.DataFrame({"label": [labels[int(i)] for i in p.argmax(1)],
                             **{f"probability_{lab}": p[:, k] for k, lab in enumerate(labels)}})


def _load_pyfunc(path: str) -> Model:
    """MLflow's entry point (`loader_module`): the package folder the MLmodel's `data` names."""
    return Model(Package(package_root(path), "fp32"))


def package_root(path: str | Path) -> Path:
    """The graft package inside a folder: itself, or the one folder below it holding graft_model.json."""
    path = Path(path)
    if (path / MODEL_META).is_file():
        return path
    found = sorted(p.parent for p in path.rglob(MODEL_META))
    if len(found) != 1:
        raise GraftError(f"{path}: expected one graft model package (a folder with {MODEL_META}), found {len(found)}")
    return found[0]


def save(package: str | Path, dest: str | Path, example: list) -> Path:
    """Write the MLflow model folder for `package` at `dest`: flavor, signature, input example from `example`.

    The signature comes from the package's files (its modality's input, its labels), not from running it: a
    package is registered as it is, and infra-validation, not registration, judges whether it serves.
    """
    import importlib.metadata as md
    import json

    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from graft import modalities

    package = Path(package)
    meta = json.loads((package / MODEL_META).read_text())
    labels = json.loads((package / "labels.json").read_text())
    modality = modalities.get(meta.get("modality", "text"))
    name = modality.wire_name
    signature = ModelSignature(inputs=Schema([ColSpec("string", name)]),
                               outputs=Schema([ColSpec("string", "label"),
                                               *(ColSpec("float", f"probability_{lab}") for lab in labels)]))
    encode = (lambda v: base64.b64encode(v).decode()) if modality.wire_base64 else str  # as JSON carries them
    inputs = pd.DataFrame({name: [encode(v) for v in example]})
    requirements = [f"{p}=={md.version(p)}" for p in ("onnxruntime", "tokenizers", "numpy", "pandas", "pillow")]
    mlflow.pyfunc.save_model(str(dest), loader_module=LOADER, data_path=str(package), signature=signature,
                             input_example=inputs, pip_requirements=[*requirements, f"graft=={md.version('graft')}"],
                             metadata={"graft_package": package.name})
    return Path(dest)

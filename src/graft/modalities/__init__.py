"""The modality registry: each modality (text, image) owns its pieces behind graft.modalities.base.Modality.

`get(name)` is the one way the rest of graft learns what an example is: from `data.modality` in the config, or
from `modality` in a saved model's metadata. Modality modules import torch only where tensors are touched, so the
torch-free serving path (graft.serve.predict) can use them.
"""

from __future__ import annotations

from pathlib import Path

from graft.core.artifacts import read_json
from graft.core.errors import GraftError
from graft.modalities.base import Modality
from graft.modalities.image import IMAGE
from graft.modalities.text import TEXT

REGISTRY: dict[str, Modality] = {m.name: m for m in (TEXT, IMAGE)}
MODEL_META = "graft_model.json"
WEIGHTS = "model.safetensors"


def get(name: str) -> Modality:
    """The registered modality called `name` (data.modality, or a saved model's `modality`)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise GraftError(f"data.modality: unknown modality {name!r} (known: {', '.join(REGISTRY)})") from None


def of_model(folder: str | Path) -> tuple[Modality, dict]:
    """The modality and metadata of a saved model or ONNX package folder."""
    folder = Path(folder)
    if not (folder / MODEL_META).is_file():
        raise GraftError(f"{folder}: not a graft model folder (no {MODEL_META})")
    meta = read_json(folder / MODEL_META)
    return get(meta.get("modality", "text")), meta


def save_model(model, processor, out: Path, meta: dict, modality: Modality) -> None:
    """Write weights (safetensors), what the modality needs to rebuild the processor, and graft's metadata."""
    from safetensors.torch import save_model as save_weights

    from graft.core.artifacts import write_json

    save_weights(model, str(out / WEIGHTS))
    extra = modality.save(model, processor, out, meta)
    write_json(out / MODEL_META, {**meta, "modality": modality.name, **extra})
    (out / "README.md").write_text(folder_card(modality, {**meta, **extra}), encoding="utf-8")


def folder_card(modality: Modality, meta: dict) -> str:
    """The folder's README.md (a Hugging Face style card): what the model is, how it was trained, how to load it."""
    library, how = modality.loading(meta)
    labels = meta.get("labels", [])
    backbone = (meta.get("backbone") or {}).get("name", "?")
    best = meta.get("best_epoch", "?")
    return (f"---\nlibrary_name: {library}\ntags: [graft, {modality.name}-classification]\n---\n\n"
            f"# {backbone} fine-tuned by graft: {', '.join(map(str, labels))}\n\n"
            f"Initialised from {meta.get('init_from', '?')} weights, `{meta.get('mode', '?')}` mode, "
            f"{meta.get('train_rows', '?')} training rows, best epoch {best} by validation macro-F1, seed "
            f"{meta.get('seed', '?')}. The registered version's model card (MLflow) has the test metrics, the gate "
            f"verdict and the explanations.\n\n{how}")


def load_model(folder: str | Path) -> tuple:
    """Reload a saved classifier: (processor, model in eval mode, metadata)."""
    from safetensors.torch import load_model as load_weights

    modality, meta = of_model(folder)
    processor, model = modality.load(Path(folder), meta)
    load_weights(model, str(Path(folder) / WEIGHTS))
    return processor, model.eval(), meta


def default_data(dest: str | Path) -> Path | None:
    """Write the packaged default data set named by `dest`'s file name; None when no modality ships one."""
    dest = Path(dest)
    for modality in REGISTRY.values():
        if modality.default_data == dest.name:
            return modality.materialize(dest)
    return None

"""The one interface a modality implements: everything graft does that depends on what an example is.

The stages call these methods and never ask which modality they hold. Data side: the column, the table reader,
cleaning, the content keys (identity for fingerprints, a folded key for duplicates and leakage), the Great
Expectations checks and their messages, the drift measure. Model side: build and reload a classifier, the
processor (`model(**processor(batch))`, a mapping of tensors for text and images alike), frozen features for
selection and feature extraction, the ONNX spec and int8 method, the torch-free serving preprocessing, and the
classical baseline. A new modality is one subpackage that implements this class and registers itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graft.core.config import Candidate, Config, DataConfig, ValidateConfig
from graft.core.errors import GraftError

# One check's message: (check name, GX result, config, the table) -> the detail line, or None if not this modality's
Message = Callable[[str, dict, ValidateConfig, pd.DataFrame], str | None]


class TooLarge(GraftError):
    """An input over a serving size limit (the server answers 413, not 400)."""


class Modality(ABC):
    """What one example is (`name`), and every piece of graft that depends on it."""

    name: str  # the data.modality value, also the column graft's tables hold an example in
    noun: str  # what a model card calls the inputs ("short texts", "images")
    default_data: str | None = None  # file name of the packaged default data set it can write (graft materialize)
    risks: dict[str, str] = {}  # the modality's own checks: what each guards against
    drift_measure: str  # the name of its shape measure in drift profiles ("text lengths")
    drift_edges: list[float]
    package_files: tuple[str, ...] = ()  # files its ONNX package needs beside model.onnx and labels.json
    adaptations: tuple[str, ...] = ("dann", "self_training")  # the train.adapt methods that apply to it
    column_key: str  # the data.* setting that names the file's example column (graft init writes it)
    adaptation_note: str = ""  # why the others do not (the config error says it)

    @property
    def column(self) -> str:
        """The column an example lives in, in every table inside graft."""
        return self.name

    def examples(self, df: pd.DataFrame) -> list:
        """The inputs of a table, in row order."""
        return df[self.column].tolist()

    # ---- data side ----------------------------------------------------------------------------------------
    @abstractmethod
    def read_table(self, path: Path, cfg: DataConfig) -> pd.DataFrame:
        """A raw or user table with its columns renamed to graft's (`<column>`, `label`, `time`, `split`, ...)."""

    def detect(self, path: Path) -> tuple[pd.DataFrame, list[str]] | None:
        """For `graft init`: `path` as read before any renaming, and its candidate example columns.

        The candidates are the columns that could hold this modality's examples, best first (empty: none could);
        None when this modality does not read such a path at all.
        """
        return None

    def materialize(self, dest: Path) -> Path:
        """Write the packaged default data set to `dest` (only for `default_data`)."""
        raise GraftError(f"{dest}: the {self.name} modality ships no default data set; put your file there")

    @abstractmethod
    def clean(self, df: pd.DataFrame) -> pd.DataFrame:
        """Normalize the example column and drop repeated examples (prepare), keeping the first."""

    @abstractmethod
    def identity(self, items: list) -> list[str]:
        """A string per example that identifies its exact content (training fingerprints, profiles)."""

    @abstractmethod
    def derived(self, df: pd.DataFrame) -> pd.DataFrame:
        """The table plus the columns its checks read; `key` holds the duplicate/leakage key (None to skip)."""

    @abstractmethod
    def expectations(self, v: ValidateConfig) -> list[Any]:
        """Its Great Expectations content checks (each with meta["check"] naming a key of `risks`)."""

    @abstractmethod
    def message(self, check: str, result: dict, v: ValidateConfig, table: pd.DataFrame) -> str | None:
        """The detail line of one of its failed checks (or of a shared one it words itself); None: not its own."""

    @abstractmethod
    def drift_values(self, items: list) -> list[float]:
        """One number per example for the drift histogram (text length, image brightness)."""

    def vocabulary(self, items: list) -> Counter:
        """Word counts for the out-of-vocabulary drift measure (empty: the measure does not apply)."""
        return Counter()

    def target_problem(self, target: pd.DataFrame, where: str, source: pd.DataFrame) -> str | None:
        """Why target-domain inputs cannot be used with a model trained on `source` (one line), or None."""
        return None

    # ---- model side ---------------------------------------------------------------------------------------
    @abstractmethod
    def build(self, candidate: Candidate, tasks: dict[str, int], init_from: str, cfg: Config):
        """(processor, fresh classifier) on the candidate backbone, pretrained or random (`init_from`)."""

    @abstractmethod
    def save(self, model, processor, out: Path, meta: dict) -> dict:
        """Write what reloading needs besides the weights (`meta`: graft_model.json so far); return more of it."""

    @abstractmethod
    def load(self, folder: Path, meta: dict):
        """(processor, model with random weights of the saved architecture): the caller loads the weights."""

    @abstractmethod
    def encode(self, processor, items: list):
        """The training loop's view of a split: `lengths()`, and `batch(idx, device)` -> the model's inputs."""

    @abstractmethod
    def frozen_features(self, model, processor, items: list, candidate: Candidate, cfg: Config, pretrained: bool,
                        hw) -> tuple[Any, int]:
        """Pooled features of the frozen backbone (feature extraction); and how many had to be computed."""

    @abstractmethod
    def score_backbones(self, group: list[Candidate], items: list, cfg: Config, cache) -> tuple[list[dict], int]:
        """For candidates sharing a source: [{name, source, num_layers, features, params, latency_ms}], computed."""

    @abstractmethod
    def onnx_inputs(self, model, processor) -> tuple[dict[str, Any], dict[str, dict[int, str]]]:
        """Example inputs for tracing (named as the processor names them) and their dynamic axes."""

    def calibration(self, processor, items: list) -> list[dict] | None:
        """Static int8 calibration batches (from validation rows), or None for dynamic int8."""
        return None

    def package(self, processor, folder: Path) -> dict:
        """Write the serving preprocessor's files into an ONNX package; return metadata for graft_model.json."""
        return {}

    @abstractmethod
    def serving(self, folder: Path, meta: dict) -> Callable[[list], list[tuple[np.ndarray, dict]]]:
        """Torch-free preprocessing of a package: items -> [(row positions, the ONNX model's numpy inputs)].

        One ONNX Runtime call per part; a modality whose inputs differ in size splits a batch so that little of
        it is padding (texts: graft.modalities.text.calls), the others return one part of every row.
        """

    def serving_input(self, line: str) -> tuple[Any, dict]:
        """One input line of `graft predict` -> (the item, fields echoed in its output line)."""
        return line, {}

    def probe(self, meta: dict) -> list:
        """One input a freshly loaded package must answer before it serves (graft serve's swap check)."""
        return ["graft"]

    wire_name: str = "input"  # the input tensor's name in the serving protocol (a BYTES tensor, one per input)
    wire_base64: bool = False  # JSON (not binary) requests carry its inputs base64-encoded (binary files: images)

    @abstractmethod
    def wire_item(self, blob: bytes, limits) -> Any:
        """One element of a served request's BYTES tensor -> the item; a GraftError says what is wrong with it.

        `limits` is the serve config: an element over the modality's size limit raises `TooLarge`.
        """

    @abstractmethod
    def classical(self, train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int
                  ) -> tuple[Any, str]:
        """The classical baseline's test-class probabilities, and what the baseline is."""

    # ---- explanations (graft.explain) ---------------------------------------------------------------------
    @abstractmethod
    def explainer(self, model, processor, batch_size: int):
        """A graft.models.attribution.Explainer: integrated gradients over its units, and deleting units."""

    @abstractmethod
    def explained(self, attribution) -> Any:
        """An Attribution's scores as JSON (words and scores; a pooled heat-map)."""

    @abstractmethod
    def evidence(self, records: list[dict], classes: list[str]) -> dict:
        """Per predicted class, what the explained inputs' attributions have in common (top words; mean map)."""

    @abstractmethod
    def shortcuts(self, records: list[dict], classes: list[str], share: float) -> list[dict]:
        """Artefacts with >= `share` of a class's positive attribution: {label, kind, share, inputs, units, hint}."""

    @abstractmethod
    def explanation_html(self, item, record: dict) -> str:
        """An HTML fragment showing one input with its attributions (shaded words; a heat-map overlay)."""

    @abstractmethod
    def evidence_html(self, evidence: dict) -> str:
        """An HTML fragment showing `evidence`."""

    @abstractmethod
    def loading(self, meta: dict) -> tuple[str, str]:
        """How a saved model folder loads outside graft: (the library it loads with, a Markdown section saying how)."""

    @abstractmethod
    def card(self, meta: dict) -> tuple[str, str]:
        """Model-card phrases: the input size ("max_length 64"), and the input limit sentence."""

"""Resumable training state, written atomically: killed at any instant, a run resumes from the last checkpoint.

A checkpoint holds the trainable weights, optimizer and scheduler state, every RNG state, the position in the
epoch's batch order, the history and the best epoch's weights so far, so a resumed run takes exactly the steps an
uninterrupted one would have. It carries a fingerprint of everything that shapes training (config, backbone, data);
a checkpoint from a different run is ignored, never resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

STATE = "state.pt"


def fingerprint(*parts) -> str:
    """A short hash of the JSON-able parts that determine a training run."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def rng_state(gen: torch.Generator) -> dict:
    """Every random state a training step reads."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "order": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    """Restore what rng_state captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    gen.set_state(state["order"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(folder: Path, state: dict) -> None:
    """Write the state to folder/state.pt through a temporary file and an atomic rename."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{STATE}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / STATE)


def load(folder: Path, expected: str) -> dict | None:
    """The saved state if it belongs to this run (same fingerprint), else None."""
    path = folder / STATE
    if not path.is_file():
        return None
    # weights_only=False: the state holds RNG tuples and numpy arrays; it is a file this run wrote itself
    state = torch.load(path, map_location="cpu", weights_only=False)
    return state if state.get("fingerprint") == expected else None

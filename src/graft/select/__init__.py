"""The `select` stage: rank candidate backbones (graft.select.ranking); `selfcheck` audits the ranking."""

from __future__ import annotations

from pathlib import Path

from graft.core import outputs
from graft.core.artifacts import write_text
from graft.core.config import Config
from graft.data.tables import read_splits, read_target
from graft.select.ranking import markdown, rank
from graft.select.skew import skew

__all__ = ["markdown", "rank", "run"]


def run(split_dir: str | Path, cfg: Config, out: str | Path, table: str | Path | None = None) -> dict:
    """The stage: rank the candidates on the training split, write the ranking JSON (and its Markdown table).

    With a target domain (data.target) it also measures the skew between training and target inputs on the
    selected backbone (graft.select.skew).
    """
    train = read_splits(split_dir)["train"]
    result = rank(train, cfg)
    target = read_target(split_dir).get("target")
    if target is not None:
        chosen = next(c for c in cfg.select.candidates if c.name == result["selected"])
        result["skew"] = skew(train, target, chosen, cfg)
    result = outputs.write(out, "select", result)
    if table:
        write_text(table, markdown(result))
    return result

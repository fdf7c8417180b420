"""The `freshness` stage: does a scheduled run have anything new to learn from?

A run is new when its data, its params or its code differ from what the current champion was trained with: the
data md5 (the raw file, or every file of a raw folder), the params hash and the git commit that every registered
version carries as tags (graft.lineage). When all three match, retraining would reproduce the champion, so the
run stops here with "no new data" — no training, exit 0 — instead of spending hours to be refused or, worse,
promoted as a copy of itself.
"""

from __future__ import annotations

from pathlib import Path

from graft.core.artifacts import write_json
from graft.core.config import Config
from graft.core.formats import source_md5
from graft.promote import lineage, registry


def run(raw: str | Path, cfg: Config, out: str | Path | None = None) -> dict:
    """The stage: {"retrain", "reason", "data_md5", "params_hash", "git_commit", "champion"} for the data at `raw`.

    With `out`, the decision is also written there as JSON.
    """
    result = _decide(raw, cfg)
    if out:
        write_json(out, result)
    return result


def _decide(raw: str | Path, cfg: Config) -> dict:
    now = {"graft.data_md5": source_md5(raw), "graft.params_hash": lineage.params_hash(cfg),
           "graft.git_commit": lineage.git_commit()}
    facts = {"data_md5": now["graft.data_md5"], "params_hash": now["graft.params_hash"],
             "git_commit": now["graft.git_commit"]}
    champ = registry.champion(cfg.registry)
    if champ is None:
        return {"retrain": True, "reason": "no champion yet: train", "champion": None, **facts}
    tags = registry.version_tags(cfg.registry, champ["version"])
    changed = [name.removeprefix("graft.").replace("_", " ") for name, value in now.items()
               if tags.get(name) != value]
    if changed:
        return {"retrain": True, "champion": champ["version"], **facts,
                "reason": f"{', '.join(changed)} changed since champion v{champ['version']}: retrain"}
    return {"retrain": False, "champion": champ["version"], **facts,
            "reason": f"no new data: champion v{champ['version']} was trained on data {facts['data_md5'][:8]} with "
                      f"params {facts['params_hash']} and this code; nothing to retrain"}

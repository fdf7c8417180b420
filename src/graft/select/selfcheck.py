"""The `selfcheck` stage: audit backbone selection by fine-tuning the runners-up too.

A transferability score is a prediction of which backbone fine-tunes best. With `selfcheck.top_n` = N > 1 the
eligible candidates ranked 2..N are fine-tuned with the same loop, data and budget as the selected one (rank 1 is
the `train` stage's model, not trained twice); `evaluate` then puts each one's real test score beside its predicted
rank and reports the Kendall rank correlation between the two, so a user sees whether the score can be trusted on
their data.
"""

from __future__ import annotations

from pathlib import Path

from scipy.stats import kendalltau

from graft.core import outputs
from graft.core.artifacts import atomic_dir, read_json, write_json
from graft.core.config import Candidate, Config
from graft.core.errors import GraftError
from graft.data.tables import read_splits
from graft.train import fit

INDEX = "selfcheck.json"


def runners_up(selection: dict, cfg: Config) -> list[tuple[int, Candidate]]:
    """(predicted rank, catalog entry) of the eligible candidates ranked 2..top_n."""
    catalog = {c.name: c for c in cfg.select.candidates}
    eligible = [r["name"] for r in selection["ranking"] if r["eligible"]]
    missing = [n for n in eligible[:cfg.selfcheck.top_n] if n not in catalog]
    if missing:
        raise GraftError(f"candidates {missing} are ranked in the selection but not in select.candidates: "
                         "rerun `graft select`")
    return [(i, catalog[name]) for i, name in enumerate(eligible[:cfg.selfcheck.top_n], 1) if i > 1]


def run(split_dir: str | Path, selection: str | Path, out: str | Path, cfg: Config, metrics: str | Path) -> dict:
    """The stage: fine-tune the runners-up into `out/<name>` (with an index file), write their metrics JSON."""
    chosen = outputs.read(selection, "select")
    todo = runners_up(chosen, cfg)
    splits = read_splits(split_dir)
    trained = []
    with atomic_dir(out) as tmp:
        for rank, cand in todo:
            result = fit(splits["train"], splits["validation"], cand, cfg, "pretrained", Path(tmp) / cand.name)
            trained.append({"name": cand.name, "predicted_rank": rank, **result})
        write_json(Path(tmp) / INDEX, {"top_n": cfg.selfcheck.top_n, "selected": chosen["selected"],
                                       "models": [{"name": t["name"], "predicted_rank": t["predicted_rank"]}
                                                  for t in trained]})
    result = {"top_n": cfg.selfcheck.top_n, "trained": [{k: t[k] for k in ("name", "predicted_rank", "seconds",
                                                                             "val_accuracy", "val_macro_f1")}
                                                         for t in trained]}
    return outputs.write(metrics, "selfcheck", result)


def models(folder: str | Path) -> list[dict]:
    """The runners-up a selfcheck folder holds: [{"name", "predicted_rank", "path"}]."""
    folder = Path(folder)
    if not (folder / INDEX).is_file():
        raise GraftError(f"{folder}: not a selfcheck folder (no {INDEX}); run `graft selfcheck`")
    return [{**m, "path": folder / m["name"]} for m in read_json(folder / INDEX)["models"]]


def compare_ranking(selection: dict, tested: list[dict], metric: str) -> dict:
    """Predicted rank beside the real test score of each fine-tuned candidate, and Kendall's tau between them.

    `tested`: [{"name", "predicted_rank", "accuracy", "macro_f1"}], the selected model included. tau is +1 when
    the test scores order the candidates exactly as selection did, -1 when exactly reversed; None below two.
    """
    score = {r["name"]: r[selection["rank_by"]] for r in selection["ranking"]}
    rows = sorted(tested, key=lambda t: t["predicted_rank"])
    by_test = sorted(rows, key=lambda t: -t[metric])
    out = [{"name": t["name"], "predicted_rank": t["predicted_rank"], selection["rank_by"]: score[t["name"]],
            "test_accuracy": t["accuracy"], "test_macro_f1": t["macro_f1"], "test_rank": by_test.index(t) + 1}
           for t in rows]
    tau = p = None
    if len(rows) >= 2:
        # negative predicted rank: a better (smaller) rank should come with a higher test score
        res = kendalltau([-t["predicted_rank"] for t in rows], [t[metric] for t in rows])
        tau, p = (None, None) if res.statistic != res.statistic else (round(float(res.statistic), 4),
                                                                       round(float(res.pvalue), 4))
    note = ("selection picked the best of the fine-tuned candidates" if len(rows) >= 2 and by_test[0] is rows[0]
            else "selection did NOT pick the best of the fine-tuned candidates" if len(rows) >= 2
            else "only the selected backbone was fine-tuned: set selfcheck.top_n >= 2 to audit the ranking")
    return {"metric": metric, "candidates": out, "kendall_tau": tau, "p_value": p, "note": note}

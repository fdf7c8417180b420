"""`freshness`: the scheduled run's first task; "no new data" ends the run before any training."""

from graft_kfp.components import BASE_IMAGE
from kfp import dsl
from kfp.dsl import Metrics, Output


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def freshness(config: dict, source: str, decision: Output[Metrics]) -> str:
    """Compare the data md5, params hash and code with the champion's; return the data md5 ("" = nothing new).

    The md5 is passed on to `prepare` as an input, so KFP's cache key follows the data's content, not its path.
    """
    from graft.core import config as gc
    from graft.promote import freshness

    cfg = gc.from_dict(config)
    result = freshness.run(source or cfg.data.raw, cfg, decision.path)
    decision.log_metric("retrain", float(result["retrain"]))
    print(result["reason"])
    return result["data_md5"] if result["retrain"] else ""

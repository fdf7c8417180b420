"""The `freshness` component's function: retrain with no champion; after one is registered, "no new data"."""

import json
import re
from pathlib import Path

from kfp import dsl


def test_no_champion_means_retrain_and_passes_the_data_md5_on(chain):
    out = chain.freshness
    assert re.fullmatch(r"[0-9a-f]{32}", out.value)
    assert out.decision.metadata == {"retrain": 1.0}
    assert json.loads(Path(out.decision.path).read_text())["retrain"] is True


def test_after_registering_the_same_data_params_and_code_is_no_new_data(chain):
    from graft_kfp.components.freshness.component import freshness

    version = chain.register.value
    again = chain.call(freshness, "again", source="", outputs={"decision": dsl.Metrics})
    decision = json.loads(Path(again.decision.path).read_text())
    assert again.value == "" and decision["retrain"] is False, decision["reason"]
    assert f"v{version}" in decision["reason"]

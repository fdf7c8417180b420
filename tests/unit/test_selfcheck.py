import pytest

from graft.core import config
from graft.core.errors import GraftError
from graft.select.selfcheck import compare_ranking, runners_up


def selection(*names, ineligible=()):
    ranking = [{"name": n, "logme": -0.1 * i, "eligible": n not in ineligible} for i, n in enumerate(names)]
    ranking.sort(key=lambda r: not r["eligible"])
    return {"ranking": ranking, "selected": ranking[0]["name"], "rank_by": "logme"}


def scored(**scores):
    return [{"name": n, "predicted_rank": i, "accuracy": s, "macro_f1": s}
            for i, (n, s) in enumerate(scores.items(), 1)]


def test_tau_is_one_when_test_scores_follow_the_predicted_order():
    check = compare_ranking(selection("a", "b", "c"), scored(a=0.9, b=0.8, c=0.7), "macro_f1")
    assert check["kendall_tau"] == 1.0 and [c["test_rank"] for c in check["candidates"]] == [1, 2, 3]
    assert check["note"].startswith("selection picked the best")


def test_tau_is_minus_one_when_reversed_and_the_note_says_so():
    check = compare_ranking(selection("a", "b", "c"), scored(a=0.7, b=0.8, c=0.9), "macro_f1")
    assert check["kendall_tau"] == -1.0 and [c["test_rank"] for c in check["candidates"]] == [3, 2, 1]
    assert "did NOT pick the best" in check["note"]


def test_one_swap_of_three_gives_a_third():
    check = compare_ranking(selection("a", "b", "c"), scored(a=0.9, b=0.7, c=0.8), "macro_f1")
    assert check["kendall_tau"] == pytest.approx(1 / 3, abs=1e-4)


def test_a_single_candidate_has_no_tau():
    check = compare_ranking(selection("a", "b"), scored(a=0.9), "macro_f1")
    assert check["kendall_tau"] is None and "top_n >= 2" in check["note"]


def cfg_with(top_n, names):
    return config.from_dict({"data": {"raw": "x.csv", "labels": ["p", "q"]}, "selfcheck": {"top_n": top_n},
                             "select": {"candidates": [{"name": n, "source": "pkg:m"} for n in names]}})


def test_runners_up_skip_the_selected_and_the_ineligible():
    sel = selection("a", "b", "c", "d", ineligible=("b",))
    assert [(r, c.name) for r, c in runners_up(sel, cfg_with(3, "abcd"))] == [(2, "c"), (3, "d")]
    assert runners_up(sel, cfg_with(1, "abcd")) == []


def test_a_ranked_candidate_missing_from_the_catalog_is_an_error():
    with pytest.raises(GraftError, match=r"\['b'\] are ranked .* rerun `graft select`"):
        runners_up(selection("a", "b"), cfg_with(2, "a"))

"""The `selfcheck` component's function: the runner-up fine-tuned with the same loop, to audit the ranking."""

from graft.core import outputs


def test_fine_tunes_the_runner_up(chain):
    out = chain.selfcheck
    names = [c["name"] for c in chain.config["select"]["candidates"]]
    runner_up = [n for n in names if n != chain.select.value]
    assert out.models.metadata == {"top_n": 2, "names": runner_up}
    assert out.metrics.metadata["runners_up"] == 1
    written = outputs.read(out.metrics.path, "selfcheck")
    assert [t["name"] for t in written["trained"]] == runner_up

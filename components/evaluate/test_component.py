"""The `evaluate` component's function: both models and the classical baseline scored, for the gate and the UI."""

from graft.core import outputs


def test_scores_every_model_and_logs_the_confusion_matrix(chain):
    out = chain.evaluate
    written = outputs.read(out.evaluation.path, "evaluate")
    for name in ("finetune", "scratch", "classical"):
        assert out.evaluation.metadata[f"{name}_macro_f1"] == written[name]["macro_f1"]
    assert written["selfcheck"]["kendall_tau"] is not None  # two candidates, both fine-tuned: the ranking is audited
    matrix = out.confusion.metadata["confusionMatrix"]
    assert [c["displayName"] for c in matrix["annotationSpecs"]] == written["labels"]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == written["finetune"]["rows"]
    dom = written["domains"]  # the chain adapts to a target domain
    assert dom["method"] == "self_training" and dom["rows"] == {"source": 60, "target": 100}
    assert out.evaluation.metadata["target_adapted_macro_f1"] == dom["target"]["adapted"]["macro_f1"]

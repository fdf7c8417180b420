"""The explain stage and `graft explain` on the shrunk text run: the sample, faithfulness, pages, bad input."""

import json

import pytest

from graft.cli import main
from graft.core import outputs
from graft.core.artifacts import read_json
from graft.data.tables import read_splits
from graft.promote import gate
from tests.shrink import said


def test_the_stage_explains_a_stratified_sample_with_the_misclassified_first(stage_run, shrunk):
    _, cfg = shrunk
    ex = outputs.read(stage_run["explain"], "explain")
    test = read_splits(stage_run["splits"])["test"]
    assert ex["model"] == "source_only" and ex["rows"]["explained"] == min(cfg.explain.n, len(test))
    assert ex["steps"] == cfg.explain.steps and set(ex["faithfulness"]) == {"model", "scratch"}
    shown = ex["examples"]
    wrong = [r for r in shown if r["label"] != r["truth"]]
    assert shown[: len(wrong)] == wrong  # the reports show the misclassified first
    for r in shown:
        assert test["text"].iloc[r["row"]] == r["input"] and test["label"].iloc[r["row"]] == r["truth"]
        assert [w for w, _ in r["attributions"]] and 0 <= r["probability"] <= 1
    for name, f in ex["faithfulness"].items():
        assert f["items"] == ex["rows"]["explained"], name
        assert f["completeness"]["share"] >= 0.95, (name, f["completeness"])  # IG converges at these steps
        low, high = f["ratio_ci"]
        assert low is None or high is None or low <= high
    assert set(ex["evidence"]) == set(cfg.data.labels)
    assert "Faithfulness" in stage_run["explain_html"].read_text()


def test_the_gate_reports_faithfulness_and_gates_on_it_only_when_asked(stage_run, shrunk):
    _, cfg = shrunk
    docs = read_json(stage_run["evaluate"]), read_json(stage_run["export"]), read_json(stage_run["explain"])
    check = next(c for c in gate.decide(*docs[:2], cfg.gate, docs[2])["checks"]
                 if c["name"] == "explanation_faithfulness")
    assert check["passed"] and check["blocking"] is False and "not gated" in check["why"]
    strict = cfg.gate.model_copy(update={"min_explanation_faithfulness": 1000.0})
    verdict = gate.decide(*docs[:2], strict, docs[2])
    assert not verdict["passed"] and any(r.startswith("explanation_faithfulness:") for r in verdict["reasons"])
    missing = gate.decide(*docs[:2], strict, None)
    assert any("explain stage did not run" in r for r in missing["reasons"])


def test_graft_explain_writes_json_lines_and_a_page(stage_run, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("Thank you Ohio! #Trump2016\n\nWe are stronger together. -H\n")
    out, page = tmp_path / "out.jsonl", tmp_path / "out.html"
    assert main(["explain", "--model", str(stage_run["finetune"]), "--input", str(texts), "--steps", "16",
                 "--out", str(out), "--html", str(page)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == ["Thank you Ohio! #Trump2016", "We are stronger together. -H"]
    for r in rows:
        assert set(r) >= {"input", "label", "probability", "attributions", "delta"}
        assert "".join(w for w, _ in r["attributions"]) == r["input"].replace(" ", "")
    assert page.read_text().count("class='example'") == 2
    assert main(["explain", "--model", str(stage_run["finetune"]), "--splits", str(stage_run["splits"]),
                 "--split", "test", "--n", "3", "--steps", "8"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize("case", ["missing", "onnx", "empty", "no-model"])
def test_bad_input_to_graft_explain_is_one_line_and_exit_1(stage_run, tmp_path, capsys, case):
    inputs = tmp_path / "texts.txt"
    inputs.write_text("" if case == "empty" else "some text\n")
    model = {"missing": tmp_path / "nope", "onnx": stage_run["onnx"], "empty": stage_run["finetune"],
             "no-model": tmp_path}[case]
    assert main(["explain", "--model", str(model), "--input", str(inputs)]) == 1
    (err,) = said(capsys.readouterr().err)  # one line besides the timestamped start line
    assert err.startswith("graft explain: error: ")
    expected = {"missing": "no such model folder", "onnx": "an ONNX package", "empty": "no inputs",
                "no-model": "not a graft model folder"}[case]
    assert expected in err and (str(inputs) in err if case == "empty" else str(model) in err)

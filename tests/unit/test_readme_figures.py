"""The README's figures are the recorded runs' figures: the committed metrics/ (and image/metrics/) say them.

A README that quotes an older run than the one the repository holds is caught here: re-record the run (`make run`,
commit metrics/ and dvc.lock) and paste its summary, or the suite fails.
"""

import re
from pathlib import Path

from graft.core.artifacts import read_json
from graft.report.summary import summary

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _block() -> list[str]:
    """The summary lines the README shows (the fenced block after "`make run` ends with a summary")."""
    after = README.split("`make run` ends with a summary", 1)[1]
    return [ln for ln in after.split("```\n", 2)[1].splitlines() if ln.strip()]


def _row(start: str) -> str:
    return next(ln for ln in README.splitlines() if ln.startswith(f"| {start}"))


# What the gate did is recorded in the clone's own registry (metrics/gate.json is never committed: a fresh clone's
# run registers into its own), so these lines of the README's summary have nothing in metrics/ to be checked against.
REGISTRY_LINES = ("gate           :", "model          :")


def test_the_readme_summary_is_the_recorded_runs_summary():
    recorded = summary(ROOT / "metrics", ROOT / "models" / "onnx").splitlines()
    shown = [ln for ln in _block() if not ln.startswith(REGISTRY_LINES)]
    assert len(shown) >= 10
    for line in shown:
        assert line in recorded, f"README line not in the summary of metrics/: {line!r}"


def test_the_readme_table_quotes_the_recorded_text_and_image_runs():
    ev = read_json(ROOT / "metrics" / "evaluate.json")
    f1 = [round(ev[m]["macro_f1"], 3) for m in ("finetune", "scratch", "classical")]
    assert f"macro-F1 {f1[0]:.3f} vs {f1[1]:.3f} vs {f1[2]:.3f}" in _row("text: MiniLM")
    img = read_json(ROOT / "image" / "metrics" / "evaluate.json")
    acc = [round(img[m]["accuracy"], 3) for m in ("finetune", "scratch", "classical")]
    assert f"accuracy {acc[0]:.3f} vs {acc[1]:.3f} vs {acc[2]:.3f}" in _row("images: EfficientNet")
    f = read_json(ROOT / "metrics" / "explain.json")["faithfulness"]["model"]
    lo, hi = f["ratio_ci"]
    row = _row("explanations:")
    assert f"{f['ratio']:.1f}x [{lo:.1f}, {hi:.1f}]" in row
    assert f"complete on {100 * f['completeness']['share']:.0f}% of items" in row
    seconds = re.search(r"in (\d+) s", row)
    assert seconds and abs(int(seconds.group(1)) - read_json(ROOT / "metrics" / "explain.json")["seconds"]) <= 1

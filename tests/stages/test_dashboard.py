"""The run report and the runs index, built from a real shrunk run and opened in headless Chromium."""

import re
import shutil

import pytest

from graft.core.artifacts import read_json, write_json
from graft.data.tables import read_splits
from graft.data.validate import validate_tables
from graft.promote import gate
from graft.report import html as dashboard
from graft.report.runs import runs_index

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, installed by `make setup`
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def pages(stage_run, shrunk, tmp_path_factory):
    """The report and index of the shrunk run, with its metrics laid out as a DVC run leaves them."""
    _, cfg = shrunk
    tmp = tmp_path_factory.mktemp("dashboard")
    metrics = tmp / "metrics"
    metrics.mkdir()
    for name in ("select", "train", "baseline", "evaluate", "explain", "export"):
        shutil.copy(stage_run[name], metrics / f"{name}.json")
    write_json(metrics / "validate.json", validate_tables(read_splits(stage_run["splits"]), cfg).to_dict())
    verdict = gate.decide(read_json(stage_run["evaluate"]), read_json(stage_run["export"]), cfg.gate,
                          read_json(stage_run["explain"]))
    write_json(metrics / "gate.json", {**verdict, "registered": stage_run["registered"]})
    run = dashboard.report(cfg, dashboard.collect(metrics, stage_run["splits"]), tmp / "reports" / "run.html")
    index = runs_index(cfg.registry, tmp / "reports" / "runs.html")
    return run, index, tmp


def open_in_chromium(path, shot):
    """Load a page from disk in headless Chromium; return its text, console/page errors and requested URLs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        text = page.inner_text("body")
        svgs = page.locator("svg").count()
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    return text, errors, requests, svgs


def test_the_report_answers_the_four_questions_in_a_browser(pages, stage_run):
    run, _, tmp = pages
    text, errors, requests, svgs = open_in_chromium(run, tmp / "run.png")
    assert errors == [] and requests == [run.as_uri()]  # self-contained: nothing else is fetched
    evaluation, selection = read_json(stage_run["evaluate"]), read_json(stage_run["select"])
    gap = evaluation["comparisons"]["finetune_vs_scratch"]["macro_f1"]
    assert "Data valid? yes" in text
    assert f"Backbone: {selection['selected']}" in text
    assert f"difference {gap['diff']:+.4f} (95% CI {gap['ci_low']:+.4f} to {gap['ci_high']:+.4f})" in text
    assert f"Promoted? yes, as graft-text v{stage_run['registered']['version']}" in text
    # read top-down: the verdict, the gate's checks, the comparisons, what is behind them, explanations, a glossary
    order = ["PROMOTED", "Gate checks", "Fine-tuned vs scratch vs classical vs champion", "Training",
             "Backbone ranking", "Data validation and drift", "Explanations", "ONNX parity and latency", "Lineage",
             "Glossary"]
    assert [text.index(h) for h in order] == sorted(text.index(h) for h in order)
    assert "ECE\nExpected calibration error" in text and "LogME\nLog maximum evidence" in text
    html = run.read_text()
    for href in ("runs.html", "explain.html", "validate/summary.html", "validate/index.html", "#glossary",
                 f"/#/models/graft-text/versions/{stage_run['registered']['version']}"):
        assert f'href="{href}' in html or href in html, href
    assert f"{evaluation['finetune']['macro_f1']:.4f}" in text and "transfer_benefit" in text
    assert svgs == 3  # learning curves, intervals, confusion matrix
    assert (tmp / "run.png").stat().st_size > 20_000


def test_the_explanations_render_in_the_report_and_on_their_own_page(pages, stage_run):
    run, _, tmp = pages
    ex = read_json(stage_run["explain"])
    for path, shot in ((run, tmp / "run-explain.png"), (stage_run["explain_html"], tmp / "explain.png")):
        text, errors, requests, _ = open_in_chromium(path, shot)
        assert errors == [] and requests == [path.as_uri()], path  # no external request, no console error
        assert "Faithfulness" in text and "Evidence per predicted class" in text
        f = ex["faithfulness"]["model"]
        assert f"{f['top_drop']:+.4f}" in text and f"{f['random_drop']:+.4f}" in text
        for label, words in ex["evidence"].items():
            assert label in text and all(w["word"] in text for w in words[:3])
        first = ex["examples"][0]
        assert f"test row {first['row']}: predicted {first['label']}" in text
        assert shot.stat().st_size > 20_000
    assert "explanation_faithfulness" in open_in_chromium(run, tmp / "run2.png")[0]


def test_the_runs_index_lists_every_run_and_what_was_promoted(pages, shrunk):
    _, index, tmp = pages
    text, errors, requests, svgs = open_in_chromium(index, tmp / "runs.png")
    assert errors == [] and requests == [index.as_uri()] and svgs == 1
    runs = int(re.search(r"(\d+) runs in experiment", text).group(1))
    assert runs >= 1 and "promoted as v1" in text and "mlflow ui --backend-store-uri sqlite:///" in text


def test_a_refused_run_reads_as_refused_with_its_reasons(pages, stage_run, shrunk, tmp_path):
    _, cfg = shrunk
    strict = cfg.gate.model_copy(update={"min_macro_f1": 0.99})
    verdict = gate.decide(read_json(stage_run["evaluate"]), read_json(stage_run["export"]), strict)
    d = dashboard.collect(pages[2] / "metrics", stage_run["splits"])
    page = dashboard.render({**d, "gate": {**verdict, "registered": None}}, {"commit": "x"}, "t")
    assert "<b>REFUSED</b>" in page and "Promoted?</b> no — min_macro_f1: fine-tuned macro-F1" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page) and "<script" not in page  # nothing external

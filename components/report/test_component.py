"""The `report` component's function: the same self-contained HTML page `graft report` writes."""

import re
from pathlib import Path


def test_renders_the_run_page(chain):
    page = Path(chain.report.page.path).read_text()
    assert page.startswith("<!DOCTYPE html>") or page.startswith("<!doctype html>")
    assert chain.select.value in page
    assert not re.search(r"""(src|href)=["']https?://""", page)  # self-contained: nothing to fetch

"""Great Expectations Data Docs that render offline: the CDN assets they load, served from the site itself.

GX's page templates load Bootstrap, jQuery, bootstrap-table and Font Awesome from five CDNs, and its logo from S3;
on an air-gapped cluster, in CI or on a laptop on a train the site renders unstyled with a broken logo. `localize`
copies the same releases (vendored in `docs_assets/`, MIT / OFL licences, see its README) into the site's
`static/vendor/` and points every page at them; the assets the pages never use (Vega, a date picker, a dark theme)
are dropped. `self_contained` strips a page of every external asset for embedding in one file (summary.html).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ASSETS = Path(__file__).with_name("docs_assets")

# a CDN address as GX writes it -> the vendored file (None: the pages never use it; the tag is removed)
LOCAL = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "js/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "css/all.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "js/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "css/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "css/bootstrap-table-filter-control.min.css",
}
_TAG = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["'](https?://[^"']+)["'][^>]*>(?:\s*</script>)?""",
                  re.IGNORECASE)
_LOGO = "great-expectations-web-assets"


def _rewrite(page: str, vendor: str, images: str) -> str:
    """`page` with CDN assets pointed at `vendor`/..., the logo at `images`/..., unused ones removed."""
    def swap(m: re.Match) -> str:
        url, tag = m.group(1), m.group(0)
        if url in LOCAL:  # the CDN's integrity / crossorigin attributes block a file:// page from loading it
            tag = re.sub(r"""\s(?:integrity|crossorigin)(?:=["'][^"']*["'])?""", "", tag)
            return tag.replace(url, f"{vendor}/{LOCAL[url]}")
        if _LOGO in url:
            return tag.replace(url, f"{images}/logo-long-vector.svg")
        return ""
    return _TAG.sub(swap, page)


def localize(site: str | Path) -> int:
    """Point every page of the Data Docs site at its own copies of the assets; the number of pages rewritten."""
    site = Path(site)
    vendor = site / "static" / "vendor"
    if vendor.exists():
        shutil.rmtree(vendor)
    shutil.copytree(ASSETS, vendor, ignore=shutil.ignore_patterns("README.md"))
    pages = 0
    for page in site.rglob("*.html"):
        if vendor in page.parents:
            continue
        rel = Path(os.path.relpath(site / "static", page.parent)).as_posix()
        text = page.read_text(encoding="utf-8")
        new = _rewrite(text, f"{rel}/vendor", f"{rel}/images")
        if new != text:
            page.write_text(new, encoding="utf-8")
            pages += 1
    return pages


STYLE = """<style>body{font-family:system-ui,sans-serif;font-size:13px;margin:8px;color:#222}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}
.card{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:6px}.badge{padding:1px 5px;border-radius:3px}
.text-success,.fa-check-circle{color:#176b2c}.text-danger,.fa-times{color:#b00020}.d-none,.hide{display:none}
nav,.navbar,.sidebar{display:none}.fa-check-circle::before{content:"\\2714 "}.fa-times::before,
.fa-exclamation-triangle::before{content:"\\2718 "}</style>"""


def self_contained(page: str) -> str:
    """A Data Docs page with no external asset (for an iframe `srcdoc` inside one file) and a small inline style."""
    page = _TAG.sub("", page)
    page = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.IGNORECASE | re.DOTALL)  # they need jQuery
    page = re.sub(r"<link\b[^>]*>|<img\b(?![^>]*src=[\"']data:)[^>]*>", "", page, flags=re.IGNORECASE)
    return page.replace("</head>", STYLE + "</head>", 1)

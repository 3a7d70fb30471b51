"""The whole book as one PDF, printed from the built HTML by headless Chromium.

    python tools/print_book.py _build/pdf/siamese-networks-book.pdf

Needs the built book (``make build``) and Debian's ``chromium`` (the browser
test uses the same one). Each page of the table of contents is printed with
the theme's print stylesheet, after MathJax (bundled with the book, nothing is
downloaded) has typeset its formulas; the pages are joined in reading order,
with one bookmark per page. Jupyter Book's own ``pdfhtml`` builder downloads a
browser at run time, and its LaTeX route needs a TeX installation of several
hundred megabytes; this route needs neither.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from html import unescape
from pathlib import Path

import yaml
from pypdf import PdfReader, PdfWriter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from book_files import ROOT, toc_entries  # noqa: E402

HTML = ROOT / "_build" / "html"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: Milliseconds of page time Chromium lets scripts run before printing (MathJax typesets in it).
SCRIPT_TIME_MS = 20_000
#: Added to each page for printing: long code lines wrap instead of running off the paper.
PRINT_CSS = ("<style>@media print { pre, .highlight pre, .output pre "
             "{ white-space: pre-wrap !important; overflow-wrap: anywhere; } }</style>")


def page_title(html_file: Path) -> str:
    """The page's title, without the site name the theme appends."""
    match = re.search(r"<title>(.*?)</title>", html_file.read_text(encoding="utf-8"), re.S)
    title = unescape(match.group(1)).strip() if match else html_file.stem
    site = " — " + yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    return title[:-len(site)] if title.endswith(site) else title


def print_page(html_file: Path, pdf_file: Path) -> None:
    """Print one HTML page to a PDF file with headless Chromium (code lines wrapped, see ``PRINT_CSS``)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    # a copy beside the page, so that its relative links to styles, scripts and images still resolve
    printable = html_file.with_name(f".print-{html_file.name}")
    printable.write_text(html_file.read_text(encoding="utf-8").replace("</head>", PRINT_CSS + "</head>", 1),
                         encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", f"--user-data-dir={profile}",
                            "--no-pdf-header-footer", f"--virtual-time-budget={SCRIPT_TIME_MS}",
                            f"--print-to-pdf={pdf_file}", printable.as_uri()],
                           check=True, capture_output=True, timeout=300)
    finally:
        printable.unlink()
    if not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no PDF for {html_file}")


def print_book(out: Path) -> dict:
    """Print every page of the table of contents into one PDF at ``out``; return its statistics."""
    pages = [HTML / f"{entry}.html" for entry in toc_entries()]
    missing = [str(p) for p in pages if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the built book lacks {missing}: run `make build` first")
    start, writer = time.perf_counter(), PdfWriter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, page in enumerate(pages):
            part = Path(tmp) / f"{k:02d}.pdf"
            print_page(page, part)
            first = len(writer.pages)
            writer.append(PdfReader(part))
            writer.add_outline_item(title=page_title(page), page_number=first)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        writer.write(f)
    return {"pages": len(writer.pages), "sections": len(pages), "megabytes": out.stat().st_size / 2**20,
            "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tools/print_book.py OUT.pdf")
    stats = print_book(Path(sys.argv[1]))
    print(f"wrote {sys.argv[1]}: {stats['sections']} sections, {stats['pages']} pages, "
          f"{stats['megabytes']:.1f} MB in {stats['seconds']:.0f} s")

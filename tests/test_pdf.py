"""The printed book (``make pdf``): one PDF, one bookmarked section per page of the book, typeset math.

Needs the PDF (``tools/print_book.py``, which ``make test`` runs after the build).
"""

from __future__ import annotations

import json
import re

import pytest
from book_files import ROOT, resolve, toc_entries

pytestmark = pytest.mark.pdf

PDF = ROOT / "_build" / "pdf" / "siamese-networks-book.pdf"
#: TeX source that must never reach the page: MathJax typesets it or reports an error.
RAW_TEX = re.compile(r"\$\$|\\(frac|begin|end|mathbb|lVert|sqrt|sum|partial|max)\b|Math input error")


@pytest.fixture(scope="module")
def reader():
    from pypdf import PdfReader

    if not PDF.is_file():
        pytest.fail(f"no PDF at {PDF}: run `make pdf` first")
    return PdfReader(PDF)


def _sections(reader):
    """(title, first page, text of its pages) per bookmark, in order."""
    starts = [(item.title, reader.get_destination_page_number(item)) for item in reader.outline]
    ends = [page for _, page in starts[1:]] + [len(reader.pages)]
    return [(title, first, "\n".join(reader.pages[k].extract_text() for k in range(first, end)))
            for (title, first), end in zip(starts, ends)]


def test_one_section_per_page_of_the_book_in_order(reader):
    sections = _sections(reader)
    assert len(sections) == len(toc_entries())
    firsts = [first for _, first, _ in sections]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    for (title, _, text), entry in zip(sections, toc_entries()):
        heading = resolve(entry).read_text(encoding="utf-8")
        own_title = title.split(". ", 1)[-1].replace("’", "'")
        assert own_title in heading, (title, entry)
        assert len(text) > 200, title  # printed, not blank


def _code(entry):
    """The source of a chapter's code cells: code may hold TeX (a plot label), prose may not."""
    path = resolve(entry)
    if path.suffix != ".ipynb":
        return ""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _token_at(text, start, end):
    """The whitespace-delimited word around text[start:end]."""
    left = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
    right = min([i for i in (text.find(" ", end), text.find("\n", end)) if i != -1] or [len(text)])
    return text[left:right]


def test_math_is_typeset_not_left_as_tex(reader):
    for (title, _, text), entry in zip(_sections(reader), toc_entries()):
        code = _code(entry)
        raw = [m for m in RAW_TEX.finditer(text) if _token_at(text, m.start(), m.end()) not in code]
        assert not raw, (title, text[max(raw[0].start() - 80, 0):raw[0].end() + 40] if raw else "")
    contrastive = next(text for title, _, text in _sections(reader) if "contrastive loss" in title.lower())
    assert re.search(r"max\(m\s*−", contrastive)  # the hinge, typeset (MathJax writes the minus as U+2212)

"""Student worksheets (tools/worksheets.py): valid notebooks, no solution leaks, every exercise kept."""

import json
import re
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import worksheets  # noqa: E402
from book_files import toc_notebooks  # noqa: E402

CHAPTERS = [p for p in toc_notebooks() if worksheets.exercise_labels(json.loads(p.read_text()))]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("worksheets")
    return out, worksheets.write_worksheets(out)


def _solution_pieces(notebook):
    """Pieces of every solution, found independently of the tool: code cells, gated text, plain blocks."""
    code = ["".join(c["source"]) for c in notebook["cells"]
            if c["cell_type"] == "code" and "solution" in c["metadata"].get("tags", [])]
    markdown = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    bodies = re.findall(r"\{solution-start\}.*?\n```\n(.*?)```\{solution-end\}", markdown, re.S)
    bodies += re.findall(r"```\{solution\}[^\n]*\n(.*?)\n```", markdown, re.S)
    paragraphs = [p.strip() for body in bodies for p in body.split("\n\n")]
    return code + [p for p in paragraphs if len(p) > 40 and not p.startswith(":")]


def test_one_worksheet_per_chapter_and_a_zip(written):
    out, paths = written
    assert [p.name for p in paths] == [p.name for p in CHAPTERS] and len(paths) >= 12
    with zipfile.ZipFile(out / "worksheets.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"worksheets/{p.name}" for p in paths)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_worksheet_is_valid_keeps_every_exercise_and_leaks_no_solution(written, chapter):
    out, _ = written
    book = json.loads(chapter.read_text())
    sheet = nbformat.read(out / chapter.name, as_version=4)
    nbformat.validate(sheet)
    text = "\n".join(c.source for c in sheet.cells)
    assert worksheets.exercise_labels(json.loads((out / chapter.name).read_text())) == \
        worksheets.exercise_labels(book)
    assert not re.search(r"\{solution(-start|-end)?\}", text)
    assert not any("solution" in c.metadata.get("tags", []) for c in sheet.cells)
    pieces = _solution_pieces(book)
    assert pieces  # every chapter has solutions to leak
    leaked = [piece for piece in pieces if piece in text]
    assert not leaked, leaked[:3]
    assert all(not c.get("outputs") for c in sheet.cells if c.cell_type == "code")
    assert "../worksheets/" not in text  # the chapter's link to its worksheet is not needed in it


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_worksheet_code_up_to_the_first_exercise_is_the_chapters(written, chapter):
    """nbval runs every chapter: a worksheet runs up to its first exercise if it keeps that code as it is."""
    def code_before_exercises(cells):
        first = next(i for i, c in enumerate(cells) if "{exercise}" in "".join(c["source"]))
        return ["".join(c["source"]) for c in cells[:first] if c["cell_type"] == "code"]

    out, _ = written
    book = json.loads(chapter.read_text())["cells"]
    sheet = json.loads((out / chapter.name).read_text())["cells"]
    assert code_before_exercises(sheet) == code_before_exercises(book)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_links_its_worksheet(chapter):
    first = "".join(json.loads(chapter.read_text())["cells"][0]["source"])
    assert f'<a href="../worksheets/{chapter.name}" download>' in first
    assert '<a href="../worksheets/worksheets.zip" download>' in first


def test_a_worksheet_runs(written):
    """The first chapter's worksheet, executed from the top to its end (a few seconds)."""
    from nbclient import NotebookClient

    out, _ = written
    sheet = nbformat.read(out / CHAPTERS[0].name, as_version=4)
    where = {"metadata": {"path": str(out)}}
    client = NotebookClient(sheet, timeout=300, kernel_name="python3", resources=where)
    client.execute()
    assert any(c.get("outputs") for c in sheet.cells if c.cell_type == "code")


def test_stripping_handles_gated_and_plain_solutions():
    text = ("Before.\n```{solution-start} a\n:class: dropdown\n```\nHidden.\n"
            "```{solution-end}\n```\nBetween.\n"
            "```{solution} b\n:class: dropdown\n\nPlain hidden.\n```\nAfter.\n")
    kept, inside = worksheets.strip_markdown(text, False)
    assert kept == "Before.\nBetween.\nAfter.\n" and not inside
    kept, inside = worksheets.strip_markdown("Open.\n```{solution-start} c\n```\nstill hidden", False)
    assert kept == "Open.\n" and inside
    assert worksheets.strip_markdown("hidden\n```{solution-end}\n```\nvisible", True) == ("visible", False)

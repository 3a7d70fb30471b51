"""Student worksheets: every chapter without its solutions, ready to hand out.

    python tools/worksheets.py _build/worksheets

writes one notebook per chapter (same file name) and ``worksheets.zip`` with
all of them. A worksheet keeps every cell of its chapter except the
solutions: the gated ``{solution-start}`` … ``{solution-end}`` blocks (their
text and their code cells, tagged ``solution``) and the plain ``{solution}``
blocks. Outputs are cleared; a first cell says what the worksheet is.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from book_files import toc_notebooks  # noqa: E402

START = re.compile(r"```\{solution-start\}[^\n]*\n(?::[^\n]*\n)*```\n?")
END = re.compile(r"```\{solution-end\}\n```\n?")
PLAIN = re.compile(r"```\{solution\}[^\n]*\n.*?\n```\n?", re.S)
#: The chapter's link to its own worksheet, which a worksheet does not need.
LINK = re.compile(r"^\*\*Worksheet:\*\*.*\n", re.M)
EXERCISE_LABEL = re.compile(r"```\{exercise\}[^\n]*\n(?::[^\n]*\n)*?:label: (\S+)")


def _source(cell) -> str:
    return "".join(cell["source"])


def strip_markdown(text: str, inside: bool) -> tuple[str, bool]:
    """Remove the solution parts of one markdown cell; ``inside``: a gated solution is open."""
    out, pos = [], 0
    while True:
        if inside:
            end = END.search(text, pos)
            if end is None:
                return PLAIN.sub("", "".join(out)), True
            pos, inside = end.end(), False
        start = START.search(text, pos)
        if start is None:
            out.append(text[pos:])
            return PLAIN.sub("", "".join(out)), False
        out.append(text[pos:start.start()])
        pos, inside = start.end(), True


def worksheet(notebook: dict, name: str) -> dict:
    """The worksheet of one chapter notebook (a new dict; the chapter is left as it was)."""
    sheet = copy.deepcopy(notebook)
    cells, inside = [], False
    for cell in sheet["cells"]:
        if cell["cell_type"] == "code":
            if inside or "solution" in cell.get("metadata", {}).get("tags", []):
                continue
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            text, inside = strip_markdown(LINK.sub("", _source(cell)), inside)
            if not text.strip():
                continue
            cell["source"] = text.splitlines(keepends=True)
        cells.append(cell)
    if inside:
        raise ValueError(f"{name}: a {{solution-start}} has no {{solution-end}}")
    header = {"cell_type": "markdown", "id": "worksheet", "metadata": {},
              "source": [f"**Worksheet: {name}.** This is the chapter without the solutions of its "
                         "exercises. Run it from the top; the exercises are at the end. The solutions "
                         "are in the book."]}
    sheet["cells"] = [header, *cells]
    return sheet


def exercise_labels(notebook: dict) -> list[str]:
    """The labels of the exercises of a notebook, in order."""
    return [label for c in notebook["cells"] if c["cell_type"] == "markdown"
            for label in EXERCISE_LABEL.findall(_source(c))]


def write_worksheets(out: Path) -> list[Path]:
    """Write the worksheet of every chapter with exercises, and ``worksheets.zip``, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in toc_notebooks():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if not exercise_labels(notebook):
            continue
        target = out / path.name
        target.write_text(json.dumps(worksheet(notebook, path.stem), indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
        written.append(target)
    with zipfile.ZipFile(out / "worksheets.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for target in written:
            archive.write(target, f"worksheets/{target.name}")
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tools/worksheets.py OUT_DIR")
    paths = write_worksheets(Path(sys.argv[1]))
    print(f"wrote {len(paths)} worksheets and worksheets.zip to {sys.argv[1]}")

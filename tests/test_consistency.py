"""The book's files agree with each other: table of contents, dependencies, chapter shape."""

import json
import re
import tomllib

import yaml
from book_files import ROOT, resolve, toc_entries, toc_notebooks


def test_every_toc_entry_exists():
    missing = [entry for entry in toc_entries() if resolve(entry) is None]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_every_chapter_is_listed():
    listed = {resolve(entry) for entry in toc_entries()}
    on_disk = set((ROOT / "book").glob("*.ipynb")) | set((ROOT / "book").glob("*.md"))
    unlisted = sorted(str(p.relative_to(ROOT)) for p in on_disk - listed)
    assert not unlisted, f"files in book/ missing from _toc.yml: {unlisted}"


def _requirements(lines):
    return {re.sub(r"\s+", "", line).lower() for line in lines}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [line for line in pip_section if not line.startswith("-e")]
    assert _requirements(listed) == _requirements(declared)
    assert "python=3.11" in env["dependencies"]


def test_dependencies_are_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
        assert "==" in requirement, f"{requirement} is not pinned"


def test_chapters_have_the_book_shape():
    """Learning goals, a summary, and at least three exercises with collapsible solutions."""
    for path in toc_notebooks():
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert "What you will learn" in text, path.name
        assert "## Summary" in text, path.name
        assert text.count("```{exercise}") >= 3, path.name
        assert text.count("```{solution}") == text.count("```{exercise}"), path.name
        assert text.count(":class: dropdown") >= text.count("```{solution}"), path.name
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "assert " in code, f"{path.name} checks none of its claims"


def test_bibliography_has_the_core_papers():
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in ("bromley1993", "chopra2005", "hadsell2006", "schroff2015", "hermans2017", "musgrave2020"):
        assert key in bib, key


def test_api_page_documents_every_module_whole():
    """Each module is autodocumented with :members: and no hand-made list that could fall behind."""
    page = (ROOT / "book" / "api.md").read_text()
    blocks = re.findall(r"\.\. automodule:: siamese_lib\.(\w+)\n((?:   :.*\n)*)", page)
    options = dict(blocks)
    modules = sorted(p.stem for p in (ROOT / "siamese_lib").glob("[!_]*.py"))
    assert sorted(options) == modules
    for module, opts in options.items():
        assert opts.split() == [":members:", ":undoc-members:"], module


def test_library_modules_stay_small():
    """One idea per module: none grows past about 300 lines."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "siamese_lib").glob("*.py")}
    assert max(sizes.values()) <= 330, sizes

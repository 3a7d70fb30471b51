"""The book's files agree with each other: table of contents, dependencies, chapter shape."""

import ast
import json
import re
import tomllib

import yaml
from book_files import (
    ROOT,
    SETUP_TAG,
    repository_url,
    resolve,
    setup_cell_source,
    toc_entries,
    toc_notebooks,
)


def test_every_toc_entry_exists():
    missing = [entry for entry in toc_entries() if resolve(entry) is None]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_every_chapter_is_listed():
    listed = {resolve(entry) for entry in toc_entries()}
    on_disk = set((ROOT / "book").glob("*.ipynb")) | set((ROOT / "book").glob("*.md"))
    unlisted = sorted(str(p.relative_to(ROOT)) for p in on_disk - listed)
    assert not unlisted, f"files in book/ missing from _toc.yml: {unlisted}"


def _pins(lines):
    return {re.sub(r"\s+", "", line).lower() for line in lines
            if line.strip() and not line.lstrip().startswith(("#", "-e"))}


def _name(requirement):
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_mirrors_the_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    constraints = (ROOT / "constraints.txt").read_text().splitlines()
    assert _pins(pip_section) == _pins(constraints)
    assert "python=3.11" in env["dependencies"]


def test_every_dependency_has_a_range_and_an_exact_pin():
    """pyproject states ranges (installable beside other packages); constraints.txt pins each one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pins = {_name(p): p for p in _pins((ROOT / "constraints.txt").read_text().splitlines())}
    for requirement in declared:
        assert "==" not in requirement, f"{requirement}: pyproject states a range, not a pin"
        assert _name(requirement) in pins, f"{requirement} has no exact pin in constraints.txt"
        assert "==" in pins[_name(requirement)]
    assert sorted(pins) == sorted(_name(r) for r in declared), "constraints.txt pins something undeclared"


def test_torch_is_pinned_in_one_place():
    for path in ("Makefile", "pyproject.toml", ".ci/run", "README.md"):
        assert not re.search(r"torch==|torchvision==", (ROOT / path).read_text()), path


def test_chapters_have_the_book_shape():
    """Learning goals, a summary, and at least three exercises with collapsible solutions."""
    for path in toc_notebooks():
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert "What you will learn" in text, path.name
        assert "## Summary" in text, path.name
        assert text.count("```{exercise}") >= 3, path.name
        solutions = text.count("```{solution}") + text.count("```{solution-start}")
        assert solutions == text.count("```{exercise}"), path.name
        assert text.count(":class: dropdown") >= solutions, path.name
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "assert " in code, f"{path.name} checks none of its claims"
        levels = re.findall(r"```\{exercise\}([^\n]*)\n", text)
        assert all(level.strip() in ("★", "★★", "★★★") for level in levels), (path.name, levels)


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


def _code_lines(path) -> int:
    """Lines of code of a module: docstrings (numpydoc, with examples), comments and blanks aside."""
    source = path.read_text()
    docs = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                docs.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if number not in docs and line.strip() and not line.strip().startswith("#"))


def test_library_modules_stay_small():
    """One idea per module: none grows past about 250 lines of code (its documentation aside)."""
    sizes = {p.name: _code_lines(p) for p in (ROOT / "siamese_lib").glob("*.py")}
    assert max(sizes.values()) <= 250, sizes
    assert _code_lines(ROOT / "siamese_lib" / "experiments.py") > 100  # the count counts


def test_every_chapter_opens_with_the_hidden_setup_cell():
    """Colab: the first code cell installs siamese_lib from this repository, hidden in the HTML."""
    expected = setup_cell_source(repository_url())
    for path in toc_notebooks():
        cells = json.loads(path.read_text())["cells"]
        first = next(c for c in cells if c["cell_type"] == "code")
        assert "".join(first["source"]) == expected, f"{path.name}: python tests/book_files.py setup-cells"
        assert SETUP_TAG in first["metadata"].get("tags", []), path.name


def test_the_repository_url_agrees_everywhere():
    url = repository_url()
    assert url.startswith("https://github.com/")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Source"] == url
    owner, repo = url.removeprefix("https://github.com/").split("/")
    assert project["urls"]["Homepage"] == f"https://{owner}.github.io/{repo}/"
    readme = (ROOT / "README.md").read_text()
    assert url in readme and project["urls"]["Homepage"] in readme
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"


def test_the_workflow_tests_every_change_and_publishes_main():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key "on" as True
    assert set(triggers) >= {"push", "pull_request"}
    steps = workflow["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html" and "refs/heads/main" in upload["if"]
    assert any("_build/.jupyter_cache" in str(s.get("with", {}).get("path")) for s in steps)
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "test" and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_modules_import_only_from_the_layers_below():
    """The order of the API page's module table is the layering: each imports only from earlier ones."""
    table = re.findall(r"^\| `(\w+)` \|", (ROOT / "book" / "api.md").read_text(), flags=re.M)
    modules = sorted(p.stem for p in (ROOT / "siamese_lib").glob("[!_]*.py"))
    assert sorted(table) == modules
    for position, module in enumerate(table):
        source = (ROOT / "siamese_lib" / f"{module}.py").read_text()
        imported = set(re.findall(r"^from \.(\w+) import", source, flags=re.M))
        imported |= {name.split(" as ")[0].strip() for line in re.findall(r"^from \. import (.+)$",
                                                                           source, flags=re.M)
                     for name in line.split(",")}
        imported -= {"_checks"}
        later = imported - set(table[:position])
        assert not later, f"{module} imports from {sorted(later)}, which are not below it"


def test_one_vocabulary_everywhere():
    """The retired names of mining strategies and distances appear nowhere (no aliases are kept)."""
    retired = [r'mining="(offline|all|hard)"', r"squared=", r"return_fraction", r"PairDataset",
               r"TripletDataset", r"hard=(True|False)", r"distances\.pairwise", r"seed_everything",
               r"evaluation\.embed", r"experiments\.METRICS"]
    patterns = ("siamese_lib/*.py", "benchmarks/*.py", "book/*.ipynb", "book/*.md", "README.md")
    files = [p for pattern in patterns for p in ROOT.glob(pattern)]
    found = [f"{p.name}: {pattern}" for p in files for pattern in retired
             if re.search(pattern, p.read_text(encoding="utf-8"))]
    assert not found, found


def test_recorded_chapter_times_cover_every_chapter_within_the_budgets():
    """book/chapter_times.json (tools/chapter_times.py after a build): the instructor's guide reads it."""
    record = json.loads((ROOT / "book" / "chapter_times.json").read_text())
    seconds = record["seconds"]
    assert list(seconds) == [p.stem for p in toc_notebooks()]
    assert record["machine"] and record["date"]
    assert all(0 < s <= 150 for s in seconds.values()), seconds  # no chapter over 150 s
    assert sum(seconds.values()) <= 9 * 60  # the whole book within 9 minutes

"""The mechanical half of the rule "every sentence is true of what the notebook computes".

What a test can enforce, it does here (the README's contributing section says
the rest):

* a markdown cell holds no number that a run produced: decimals, percentages
  and ratios ("24×") outside formulas and code come from the notebook through
  ``{glue:text}``; the few fixed numbers the text may state (protocol
  constants, numbers a formula gives) are listed with the reason in the
  notebook's metadata, ``"fixed_numbers": {"1.49": "why it may be typed"}``;
* every figure is a numbered MyST figure: the cell that draws it carries a
  caption, a name and alt text, and the text refers to it by number;
* an exercise solution that runs code is a gated solution whose code cells are
  executed with the chapter (by nbval and the book build) and assert the
  outcome the solution states; a solution without such cells shows no code.

The built HTML is checked for the same things in ``test_browser.py``.
"""

from __future__ import annotations

import json
import re

import pytest
from book_files import toc_notebooks

#: The notebook metadata key listing the numbers its prose may type by hand, each with
#: its reason. Anything else that looks like a measured value is glued from the run.
FIXED_NUMBERS = "fixed_numbers"

SOLUTION_TAG = "solution"
NUMBER = re.compile(r"(?<![\w.\-])(?:\d+\.\d+|\.\d+)(?:\s?%|\s?×)?(?!\w|\.\d)|(?<![\w.])\d+\s?(?:%|×)")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
CODE = re.compile(r"```(?!\{)[^\n]*\n.*?```|``[^`]+``|`[^`\n]*`", re.S)  # fenced code, inline code, roles
LINK_TARGET = re.compile(r"\]\([^)]*\)")
DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)


def _notebook(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _cells(path):
    return _notebook(path)["cells"]


def _source(cell) -> str:
    return "".join(cell["source"])


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def prose(markdown: str) -> str:
    """The text of a markdown cell without formulas, code, roles, link targets and directive options."""
    for pattern in (CODE, MATH, LINK_TARGET, DIRECTIVE_OPTION):
        markdown = pattern.sub(" ", markdown)
    return markdown


def typed_numbers(markdown: str) -> list[str]:
    """Decimals, percentages and ratios written in the prose of a markdown cell."""
    return [m.group(0) for m in NUMBER.finditer(prose(markdown))]


def test_the_number_finder_finds_what_it_must():
    text = ("P@1 0.975, ahead by 1.2 %, about 24× slower, .5 points; not $m = 0.5$, "
            "`run(lr=3e-3)`, {glue:text}`p1:.3f`, chapter 2, 15 epochs, version 1.0.4, [x](a/0.5.png), "
            "below 0.5.")
    assert typed_numbers(text) == ["0.975", "1.2 %", "24×", ".5", "0.5"]


NOTEBOOKS = toc_notebooks()
IDS = [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_hand_typed_results_in_the_prose(path):
    allowed = _notebook(path)["metadata"].get(FIXED_NUMBERS, {})
    assert all(len(reason) > 10 for reason in allowed.values()), \
        f"{path.name}: give each fixed number its reason"
    found = {n for c in _cells(path) if c["cell_type"] == "markdown" for n in typed_numbers(_source(c))}
    typed = sorted(found - set(allowed))
    assert not typed, (f"{path.name}: glue these numbers from the run ({{glue:text}}), or list a fixed "
                       f"one with its reason in the notebook metadata {FIXED_NUMBERS!r}: {typed}")
    assert not set(allowed) - found, f"{path.name}: {FIXED_NUMBERS} lists numbers the text no longer has"


def _figure_cells(path):
    return [c for c in _cells(path)
            if c["cell_type"] == "code" and "figure" in c["metadata"].get("mystnb", {})]


def _draws(cell) -> bool:
    """A code cell that leaves a matplotlib figure behind (and so shows one in the book)."""
    code = _source(cell)
    return bool(re.search(r"plt\.(subplots|figure|imshow|plot|scatter)\(|plotting\.\w+\(", code))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_is_numbered_captioned_described_and_referenced(path):
    markdown = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
    for cell in _cells(path):
        if cell["cell_type"] != "code" or not _draws(cell):
            continue
        meta = cell["metadata"].get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        where = f"{path.name}: figure cell starting {_source(cell)[:60]!r}"
        assert figure.get("name", "").startswith("fig-"), f"{where} needs mystnb.figure.name 'fig-...'"
        assert len(figure.get("caption", "")) > 40, f"{where} needs a caption (mystnb.figure.caption)"
        assert len(image.get("alt", "")) > 20, f"{where} needs alt text (mystnb.image.alt)"
        referred = "{numref}`" + figure["name"] + "`" in markdown or f"<{figure['name']}>`" in markdown
        assert referred, \
            f"{where}: the text never refers to {figure['name']} by number"
    names = [c["metadata"]["mystnb"]["figure"]["name"] for c in _figure_cells(path)]
    assert len(names) == len(set(names)), f"{path.name}: figure names repeat: {names}"


def _solutions(path):
    """(label, kind, code cells) for every solution of a notebook; kind is "plain" or "gated"."""
    found, gated = [], None
    for cell in _cells(path):
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            for m in re.finditer(r"```\{(solution|solution-start|solution-end)\}[ \t]*(\S*)", text):
                kind, label = m.groups()
                if kind == "solution":
                    found.append((label, "plain", []))
                elif kind == "solution-start":
                    assert gated is None, f"{path.name}: solution {label} starts inside another"
                    gated = (label, "gated", [])
                else:
                    assert gated is not None, f"{path.name}: a solution-end without a start"
                    found.append(gated)
                    gated = None
        else:
            assert (SOLUTION_TAG in _tags(cell)) == (gated is not None), \
                f"{path.name}: cell {text[:50]!r} is tagged {SOLUTION_TAG!r} exactly when inside a solution"
            if gated is not None:
                gated[2].append(text)
    assert gated is None, f"{path.name}: solution {gated[0]} has no solution-end"
    return found


def _plain_solution_bodies(path):
    text = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")
    return re.findall(r"```\{solution\}[^\n]*\n(.*?)\n```", text, re.S)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solutions_that_run_code_are_executed_and_check_their_outcome(path):
    solutions = _solutions(path)
    exercises = re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)",
                           "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown"))
    assert sorted(label for label, _, _ in solutions) == sorted(exercises), \
        f"{path.name}: every exercise has exactly one solution"
    for label, kind, code in solutions:
        if kind == "gated":
            assert code, f"{path.name}: gated solution {label} has no code cell"
            assert any(re.search(r"^\s*assert ", c, re.M) for c in code), \
                f"{path.name}: solution {label} runs code but asserts none of its stated outcome"
    for body in _plain_solution_bodies(path):
        assert not re.search(r"^( {4,}|\t)\S", body, re.M) and "```" not in body, \
            f"{path.name}: a solution shows code that never runs; make it a gated solution:\n{body[:200]}"

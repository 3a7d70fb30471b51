"""Public functions and classes document every parameter, and functions what they return (numpydoc)."""

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import textwrap

import pytest

import siamese_lib


def _module_names():
    """The modules of ``siamese_lib.__all__`` and every other public module file of the package."""
    files = {m.name for m in pkgutil.iter_modules(siamese_lib.__path__) if not m.name.startswith("_")}
    return sorted(set(siamese_lib.__all__) | files)


MODULES = _module_names()


def _section(doc, title):
    """The lines of the numpydoc section ``title`` of ``doc`` (dedented), or None if it has none."""
    lines = inspect.cleandoc(doc or "").splitlines()
    underline = lambda i: i < len(lines) and lines[i].strip() != "" and set(lines[i].strip()) == {"-"}
    heading = lambda i: lines[i] != "" and not lines[i][0].isspace() and underline(i + 1)
    for i, line in enumerate(lines):
        if line == title and underline(i + 1):
            end = i + 2
            while end < len(lines) and not heading(end):
                end += 1
            return lines[i + 2:end]
    return None


def documented_parameters(doc, title="Parameters"):
    """The names a Parameters section documents (``x1, x2 : Tensor`` documents two), or None."""
    section = _section(doc, title)
    if section is None:
        return None
    names = set()
    for line in section:
        if line and not line[0].isspace():  # an entry; its description is indented below it
            names.update(part.strip().lstrip("*") for part in line.split(" :")[0].split(","))
    return names


def signature_parameters(obj):
    """Parameter names of a function, or of a class's constructor (``*args``, ``**kwargs`` included)."""
    return [p.name for p in inspect.signature(obj).parameters.values() if p.name not in ("self", "cls")]


def returns_a_value(function):
    """Does ``function`` itself (not a function nested in it) have a ``return <value>``?"""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Return) and node.value is not None:
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            nodes.extend(ast.iter_child_nodes(node))
    return False


def undocumented(obj):
    """What is missing from ``obj``'s docstring, as a message, or None if nothing is."""
    if inspect.isfunction(obj) and returns_a_value(obj) and _section(obj.__doc__, "Returns") is None:
        return "no Returns section"
    params = signature_parameters(obj)
    if not params:
        return None
    docs = [obj.__doc__]
    if inspect.isclass(obj) and "__init__" in vars(obj):
        docs.append(obj.__init__.__doc__)
    sections = [names for names in map(documented_parameters, docs) if names is not None]
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):  # a record documents its fields
        sections += [names for names in (documented_parameters(obj.__doc__, "Attributes"),)
                     if names is not None]
    if not sections:
        return f"no Parameters section (parameters: {', '.join(params)})"
    missing = [p for p in params if not any(p in names for names in sections)]
    return f"undocumented: {', '.join(missing)}" if missing else None


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_parameter_and_return_is_documented(module_name):
    module = importlib.import_module(f"siamese_lib.{module_name}")
    assert isinstance(getattr(module, "__all__", None), list), f"{module_name} has no __all__"
    problems = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue  # a warning or error class takes the message only
        if inspect.isfunction(obj) or inspect.isclass(obj):
            problem = undocumented(obj)
            if problem:
                problems.append(f"{module_name}.{name}: {problem}")
    assert not problems, "\n".join(problems)


# ---- the checker itself -----------------------------------------------------------------

def _complete(x1, x2, margin=1.0, *extra, **options):
    """Summary mentioning Parameters in prose.

    Parameters
    ----------
    x1, x2 : Tensor
        The two sides.
    margin : float, optional
        Not the name of a section:
        Returns
    *extra
        More.
    **options
        Even more.

    Returns
    -------
    Tensor
        With ``x3`` mentioned here.
    """


def _missing_one(x1, x2, x3):
    """Summary.

    Parameters
    ----------
    x1, x2 : Tensor
        The Parameters of x3 are mentioned here, but x3 has no entry.

    Returns
    -------
    x3 : Tensor
    """


def _no_section(margin):
    """Summary that names margin and says Parameters, without a section."""


def _returns_undocumented(x):
    """Summary.

    Parameters
    ----------
    x : float
        Returns
    """
    def nested():
        return 1

    return x


def _returns_nothing():
    """Summary: only a nested function returns."""
    def nested():
        return 1


class _DocumentedInInit:
    """Summary."""

    def __init__(self, margin):
        """Build it.

        Parameters
        ----------
        margin : float
            The margin.
        """


class _Undocumented:
    """Summary.

    Parameters
    ----------
    metric : str
        Not a parameter of this class.
    """

    def __init__(self, margin, metric):
        pass


def test_the_checker_reads_numpydoc_entries_only():
    assert documented_parameters(_complete.__doc__) == {"x1", "x2", "margin", "extra", "options"}
    assert undocumented(_complete) is None
    assert undocumented(_missing_one) == "undocumented: x3"
    assert undocumented(_no_section) == "no Parameters section (parameters: margin)"
    assert undocumented(_DocumentedInInit) is None
    assert undocumented(_Undocumented) == "undocumented: margin"
    assert undocumented(_returns_undocumented) == "no Returns section"
    assert undocumented(_returns_nothing) is None

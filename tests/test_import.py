"""Importing the library is cheap: PyTorch, and nothing heavy that only some functions need."""

import subprocess
import sys
import time

import siamese_lib


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_import_loads_neither_pandas_nor_scikit_learn_nor_matplotlib():
    loaded = _python("import sys, siamese_lib; print(sorted(m for m in ('pandas', 'sklearn', "
                     "'matplotlib', 'scipy') if m in sys.modules))").stdout.strip()
    assert loaded == "[]"


def test_the_package_lists_and_imports_every_public_module():
    from pathlib import Path

    files = {p.stem for p in Path(siamese_lib.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert set(siamese_lib.__all__) == files
    for name in siamese_lib.__all__:
        assert getattr(siamese_lib, name).__name__ == f"siamese_lib.{name}"
        assert f":mod:`~siamese_lib.{name}`" in siamese_lib.__doc__, name


def _seconds(args) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, check=True)
    return time.perf_counter() - start


def test_help_costs_little_more_than_importing_torch():
    """``python -m siamese_lib --help`` within 0.7 s of ``import torch`` (both with warm file caches)."""
    _seconds(["-m", "siamese_lib", "--help"])  # warm the file cache
    torch_alone = min(_seconds(["-c", "import torch"]) for _ in range(2))
    help_ = min(_seconds(["-m", "siamese_lib", "--help"]) for _ in range(2))
    assert help_ < torch_alone + 0.7, (help_, torch_alone)

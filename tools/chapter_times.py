"""Record how long each chapter took to execute in the last build, for the instructor's guide.

    python tools/chapter_times.py              # after `make book`; writes book/chapter_times.json
    python tools/chapter_times.py OTHER/_build # the cache of a build elsewhere (a fresh clone)

Reads the execution times that Jupyter Book's cache (``_build/.jupyter_cache``)
stored for the notebooks it executed, and writes them with a description of
the machine. ``make test`` checks the recorded times against the budgets
(no chapter over 150 s, the whole book within 9 minutes).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from book_files import ROOT, toc_notebooks  # noqa: E402

CACHE = ROOT / "_build" / ".jupyter_cache" / "global.db"
OUT = ROOT / "book" / "chapter_times.json"


def cached_times(cache: Path = CACHE) -> dict[str, float]:
    """Seconds per notebook name, from the execution cache of the last build."""
    if not cache.is_file():
        raise FileNotFoundError(f"no execution cache at {cache}: run `make book` first")
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT uri, data FROM nbcache").fetchall()
    return {Path(uri).stem: json.loads(data)["execution_seconds"] for uri, data in rows}


def machine() -> str:
    """A short description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()}, Python {platform.python_version()}"


def main(argv) -> None:
    times = cached_times(Path(argv[0]) / ".jupyter_cache" / "global.db" if argv else CACHE)
    missing = [p.stem for p in toc_notebooks() if p.stem not in times]
    if missing:
        raise SystemExit(f"the cache has no time for {missing}: run `make book` first")
    record = {"machine": machine(), "date": datetime.date.today().isoformat(),
              "seconds": {p.stem: round(times[p.stem], 1) for p in toc_notebooks()}}
    OUT.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {sum(record['seconds'].values()):.0f} s in all on {record['machine']}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Settings chosen on the validation split: the margins, and the stored evidence behind the defaults.

The margin of a loss depends on its distance and on whether the embeddings
are normalised, so :data:`DEFAULT_MARGIN` holds one per combination, each the
best of a sweep on the validation split (``benchmarks/select_defaults.py``).
That script and ``benchmarks/select_open_set.py`` store their rows (one per
candidate and seed) in the package; :func:`evidence` reads them, chapter 8a
shows them, and the tests check that the defaults are what they select.
"""

from __future__ import annotations

import importlib.resources

import pandas as pd

__all__ = ["DEFAULT_MARGIN", "default_margin", "evidence", "open_set_winner"]

#: Margins by (loss, metric, normalize), chosen on the validation split with
#: ``benchmarks/select_defaults.py`` (chapter 8a shows those of the default distances).
DEFAULT_MARGIN = {
    ("contrastive", "euclidean", False): 1.0,
    ("contrastive", "sqeuclidean", False): 1.0,
    ("contrastive", "manhattan", False): 8.0,
    ("contrastive", "cosine", False): 1.0,
    ("contrastive", "cosine", True): 1.0,  # the cosine distance ignores the length: same margin
    ("contrastive", "euclidean", True): 1.0,
    ("contrastive", "sqeuclidean", True): 2.0,
    ("triplet", "sqeuclidean", False): 32.0,
    ("triplet", "euclidean", False): 4.0,
    ("triplet", "manhattan", False): 4.0,
    ("triplet", "cosine", False): 0.25,
    ("triplet", "cosine", True): 0.25,
    ("triplet", "sqeuclidean", True): 1.0,
    ("triplet", "euclidean", True): 1.0,
}


def default_margin(loss: str, metric: str, normalize: bool) -> float:
    """The validated margin of :data:`DEFAULT_MARGIN` for this loss, metric and normalisation.

    Raises ``ValueError`` (asking for an explicit ``margin``) where no margin
    was validated, rather than reusing one in other units.

    Examples
    --------
    >>> default_margin("contrastive", "euclidean", normalize=False)
    1.0
    """
    key = (loss, metric, bool(normalize))
    if key not in DEFAULT_MARGIN:
        raise ValueError(f"margin must be given for loss={loss!r}, metric={metric!r}, "
                         f"normalize={normalize}: no margin was validated for it; validated "
                         f"(loss, metric, normalize): {sorted(DEFAULT_MARGIN)}")
    return DEFAULT_MARGIN[key]


def evidence(part: str) -> pd.DataFrame:
    """The validation evidence behind a default, one row per candidate and seed.

    Written by ``benchmarks/select_defaults.py`` (parts ``"margins"``,
    ``"lr"``, ``"balance"``, and any other part that was run) and
    ``benchmarks/select_open_set.py`` (``"open_set"``); shipped with the
    library so that chapter 8a and the tests can read it without rerunning it.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> table = evidence("margins")
    >>> sorted(table["loss"].unique())
    ['contrastive', 'triplet']
    """
    folder = importlib.resources.files("siamese_lib") / "evidence"
    available = sorted(f.name[:-4] for f in folder.iterdir() if f.name.endswith(".csv"))
    if part not in available:
        raise ValueError(f"part must be one of the stored evidence tables {available}, got {part!r}")
    with (folder / f"{part}.csv").open() as f:
        return pd.read_csv(f)


def open_set_winner(table: pd.DataFrame, losses=("contrastive", "triplet"), score: str = "map_at_r") -> str:
    """The candidate that ``experiments.OPEN_SET`` should hold, by the book's rule.

    A candidate replaces the defaults only if, for every loss, it beats them
    on ``score`` in every paired run (same fold and seed) of the class-disjoint
    validation of ``benchmarks/select_open_set.py``; among such candidates the
    one with the largest mean gain wins. Otherwise the answer is ``"defaults"``.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``method``, ``candidate``, ``fold``, ``seed`` and ``score``,
        as in ``evidence("open_set")``; every loss needs a ``"defaults"`` row
        per fold and seed.

    Examples
    --------
    >>> open_set_winner(evidence("open_set"))
    'defaults'
    """
    gains = {}
    for loss in losses:
        runs = table[table["method"] == loss].pivot_table(index=["fold", "seed"], columns="candidate",
                                                          values=score)
        if "defaults" not in runs:
            raise ValueError(f"table must hold the 'defaults' runs of {loss!r}, got candidates "
                             f"{sorted(runs.columns)}")
        gains[loss] = runs.drop(columns="defaults").sub(runs["defaults"], axis=0)
    candidates = set.intersection(*(set(g.columns) for g in gains.values()))
    winners = {c: min(g[c].mean() for g in gains.values()) for c in candidates
               if all((g[c] > 0).all() for g in gains.values())}
    return max(winners, key=winners.get) if winners else "defaults"

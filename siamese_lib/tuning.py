"""The book's defaults, each with the stored validation evidence that selects it.

Every default a reader meets lives here: the margin of each (loss, metric,
normalisation), the learning rate, the number of epochs, the embedding size,
the augmentation, the contrastive average and the settings for digits never
seen in training. Each is selected on validation data, never on the test
split, by a committed script (``benchmarks/select_defaults.py`` and
``benchmarks/select_unseen.py``) that writes one row per candidate and seed to
``siamese_lib/evidence/<part>.csv``. :data:`DEFAULTS` says, for every default,
which rows and which rule select it; :func:`select` applies the rule to the
stored rows, and the tests check that every default is what its rows select.

The learning rate, the epochs, the embedding size and the augmentation are
the protocol both losses share (a fair comparison gives them the same
encoder and budget), so each is selected on the mean over the two losses;
a margin belongs to one loss and distance and is selected on that loss's
rows alone. Three rules:

* ``"best"``: the candidate with the best mean validation MAP@R (margins,
  learning rate, embedding size, augmentation, the contrastive average);
* ``"cheapest"``: for a budget (epochs), the smallest candidate that is not
  worse than the best by a paired 95 % t-interval over the seeds (the
  interval of best − candidate, each seed's score averaged over the losses,
  contains 0): more training time is bought only when the seeds show that
  it pays;
* ``"unseen"``: :func:`unseen_winner` (settings for unseen classes).

A margin exists only where it was validated: :func:`default_margin` raises
``ValueError`` for any other (loss, metric, normalisation), asking for an
explicit ``margin``, rather than reuse a margin in other units.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field

from .transforms import RandomAffine

__all__ = ["DEFAULT_MARGIN", "LR", "EPOCHS", "EMBEDDING_DIM", "AUGMENT", "BALANCE", "UNSEEN",
           "UNSEEN_CANDIDATES", "Evidence", "DEFAULTS", "default_margin", "evidence", "select",
           "unseen_winner", "unseen_settings"]

#: AdamW's learning rate (cosine schedule to 0), for both losses.
LR = 3e-3
#: Passes over the training split, for every method that trains.
EPOCHS = 15
#: Size of the embedding.
EMBEDDING_DIM = 32
#: The training augmentation of every run unless ``transform=None``: small random
#: rotations, shifts and zooms.
AUGMENT = RandomAffine(degrees=10, translate=0.1, scale=(0.9, 1.1))
#: Contrastive loss in P×K batches: ``False`` averages all pairs of a batch, ``True`` weighs
#: the positive and the negative pairs equally.
BALANCE = False
#: Settings of the two losses for digits never seen in training, chosen on validation
#: *classes*, as :func:`unseen_settings` turns them into ``run`` keywords (the baselines take
#: none). Empty: no candidate beat the defaults (:func:`unseen_winner` on ``evidence("unseen")``).
UNSEEN: dict = {}
#: The settings tried for unseen classes (``benchmarks/select_unseen.py``): each changes one
#: thing from the defaults, as a practitioner would try; ``margin_scale`` multiplies the
#: loss's default margin.
UNSEEN_CANDIDATES = {
    "defaults": {},
    "normalised": {"normalize": True},
    "embedding 16": {"embedding_dim": 16},
    "embedding 64": {"embedding_dim": 64},
    "8 epochs": {"epochs": 8},
    "30 epochs": {"epochs": 30},
    "half margin": {"margin_scale": 0.5},
    "double margin": {"margin_scale": 2.0},
    "batch-hard": {"mining": "batch_hard", "metric": "euclidean"},
}
#: Margins by (loss, metric, normalize). The cosine distance ignores the length of the
#: embeddings, so normalising them trains the same model: its margin is stored once, under
#: ``normalize=False``, and :func:`default_margin` serves it for both. The triplet loss with
#: the Manhattan distance has none: its validation score still rose at the largest margin
#: tried (32), by less than the seed noise, so no best margin was found.
DEFAULT_MARGIN = {
    ("contrastive", "euclidean", False): 1.0,
    ("contrastive", "sqeuclidean", False): 1.0,
    ("contrastive", "manhattan", False): 32.0,
    ("contrastive", "cosine", False): 1.0,
    ("contrastive", "euclidean", True): 1.0,
    ("contrastive", "sqeuclidean", True): 2.0,
    ("triplet", "sqeuclidean", False): 32.0,
    ("triplet", "euclidean", False): 1.0,
    ("triplet", "cosine", False): 0.5,
    ("triplet", "sqeuclidean", True): 0.5,
    ("triplet", "euclidean", True): 0.5,
}


@dataclass(frozen=True)
class Evidence:
    """Where a default comes from: rows of a stored evidence table and the rule that picks one.

    Parameters
    ----------
    part : str
        The table, ``siamese_lib/evidence/<part>.csv`` (see :func:`evidence`).
    column : str
        The column holding the candidates.
    where : dict
        Only the rows with these values (for example ``{"loss": "triplet"}``);
        empty: all rows, i.e. the mean over the losses.
    rule : {"best", "cheapest", "unseen"}
        How the rows select a candidate (see the module docstring).
    """

    part: str
    column: str
    where: dict = field(default_factory=dict)
    rule: str = "best"


def _margin_evidence(loss, metric, normalize):
    return Evidence("margins", "margin", {"loss": loss, "metric": metric, "normalize": normalize})


#: Every default and its evidence: name -> (value, :class:`Evidence`). The value is what the
#: library uses; a test checks that it is what ``select(evidence)`` returns.
DEFAULTS = {
    **{f"margin {loss} {metric}{' normalised' if normalize else ''}":
       (margin, _margin_evidence(loss, metric, normalize))
       for (loss, metric, normalize), margin in DEFAULT_MARGIN.items()},
    "LR": (LR, Evidence("lr", "lr")),
    "EPOCHS": (EPOCHS, Evidence("epochs", "epochs", rule="cheapest")),
    "EMBEDDING_DIM": (EMBEDDING_DIM, Evidence("embedding_dim", "embedding_dim")),
    "AUGMENT": (AUGMENT is not None, Evidence("augment", "augment")),
    "BALANCE contrastive": (BALANCE, Evidence("balance", "balance", {"loss": "contrastive"})),
    "UNSEEN": (UNSEEN, Evidence("unseen", "candidate", rule="unseen")),
}


def default_margin(loss: str, metric: str, normalize: bool = False) -> float:
    """The validated margin of :data:`DEFAULT_MARGIN` for this loss, metric and normalisation.

    Parameters
    ----------
    loss : {"contrastive", "triplet"}
        The loss.
    metric : str
        Its distance (:data:`~siamese_lib.distances.METRICS`).
    normalize : bool
        Whether the embeddings are L2-normalised.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Where no margin was validated, asking for an explicit ``margin``.

    Examples
    --------
    >>> default_margin("contrastive", "euclidean", normalize=False)
    1.0
    >>> default_margin("triplet", "cosine", normalize=True)  # the same model as unnormalised
    0.5
    """
    key = (loss, metric, bool(normalize) and metric != "cosine")
    if key not in DEFAULT_MARGIN:
        raise ValueError(f"margin must be given for loss={loss!r}, metric={metric!r}, "
                         f"normalize={normalize}: no margin was validated for it; validated "
                         f"(loss, metric, normalize): {sorted(DEFAULT_MARGIN)}")
    return DEFAULT_MARGIN[key]


def evidence(part: str):
    """The validation evidence behind a default, one row per candidate and seed.

    Written by ``benchmarks/select_defaults.py`` (parts ``"margins"``,
    ``"lr"``, ``"epochs"``, ``"embedding_dim"``, ``"augment"``, ``"balance"``)
    and ``benchmarks/select_unseen.py`` (``"unseen"``); shipped with the
    library so that the chapters and the tests read it without rerunning it.

    Parameters
    ----------
    part : str
        The name of a stored table.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> table = evidence("margins")
    >>> sorted(table["loss"].unique())
    ['contrastive', 'triplet']
    """
    import pandas as pd

    folder = importlib.resources.files("siamese_lib") / "evidence"
    available = sorted(f.name[:-4] for f in folder.iterdir() if f.name.endswith(".csv"))
    if part not in available:
        raise ValueError(f"part must be one of the stored evidence tables {available}, got {part!r}")
    with (folder / f"{part}.csv").open() as f:
        return pd.read_csv(f)


def select(source: Evidence, score: str = "val_map_at_r"):
    """The candidate that the stored rows of ``source`` select by its rule.

    Parameters
    ----------
    source : Evidence
        The rows and the rule, as in :data:`DEFAULTS`.
    score : str
        The score the rule compares (validation MAP@R, the book's primary score).

    Returns
    -------
    object
        A value of ``source.column`` (for ``rule="unseen"`` the settings dict).

    Raises
    ------
    ValueError
        When no stored row matches ``source.where``, or the rule is unknown.

    Examples
    --------
    >>> select(DEFAULTS["LR"][1])
    0.003
    """
    import numpy as np

    table = evidence(source.part)
    for key, value in source.where.items():
        table = table[table[key] == value]
    if table.empty:
        raise ValueError(f"source must match stored rows, got no row of {source.part!r} with "
                         f"{source.where}")
    if source.rule == "unseen":
        return UNSEEN_CANDIDATES[unseen_winner(table, score=score.removeprefix("val_"))]
    if source.rule == "best":
        return _plain(table.groupby(source.column)[score].mean().idxmax())
    if source.rule == "cheapest":
        from scipy import stats

        runs = table.pivot_table(index="seed", columns=source.column, values=score)
        best = runs.mean().idxmax()
        for candidate in sorted(runs.columns):
            diff = (runs[best] - runs[candidate]).to_numpy()
            half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
            if candidate == best or diff.mean() - half <= 0:
                return _plain(candidate)
    raise ValueError(f"source.rule must be 'best', 'cheapest' or 'unseen', got {source.rule!r}")


def _plain(value):
    """A numpy scalar as the Python number it holds (``np.float64(0.003)`` -> ``0.003``)."""
    return value.item() if hasattr(value, "item") else value


def unseen_winner(table, losses=("contrastive", "triplet"), score: str = "map_at_r") -> str:
    """The candidate that :data:`UNSEEN` should hold, by the book's rule.

    A candidate replaces the defaults only if, for every loss, it beats them
    on ``score`` in every paired run (same fold and seed) of the validation on
    held-out classes of ``benchmarks/select_unseen.py``; among such candidates
    the one with the largest mean gain wins. Otherwise the answer is
    ``"defaults"``.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``method``, ``candidate``, ``fold``, ``seed`` and ``score``,
        as in ``evidence("unseen")``; every loss needs a ``"defaults"`` row
        per fold and seed.
    losses : sequence of str
        The methods whose runs must all improve.
    score : str
        The column compared.

    Returns
    -------
    str
        A candidate name of :data:`UNSEEN_CANDIDATES`.

    Examples
    --------
    >>> unseen_winner(evidence("unseen"))
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


def unseen_settings(loss: str, candidate: dict | None = None) -> dict:
    """The ``run`` keywords of a setting for unseen classes, for one loss.

    Parameters
    ----------
    loss : {"contrastive", "triplet"}
        The loss the setting is for.
    candidate : dict, optional
        A value of :data:`UNSEEN_CANDIDATES`; default :data:`UNSEEN`. Its
        ``margin_scale`` becomes ``margin``: that multiple of the loss's
        default margin for the candidate's metric and normalisation.

    Returns
    -------
    dict

    Examples
    --------
    >>> unseen_settings("triplet", UNSEEN_CANDIDATES["half margin"])
    {'margin': 16.0}
    """
    from .experiments import DEFAULT_METRIC

    settings = dict(UNSEEN if candidate is None else candidate)
    scale = settings.pop("margin_scale", None)
    if scale is not None:
        metric = settings.get("metric", DEFAULT_METRIC[loss])
        settings["margin"] = scale * default_margin(loss, metric, settings.get("normalize", False))
    return settings

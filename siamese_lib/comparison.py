"""Several settings over several seeds under one protocol, and the tables that summarise them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .experiments import LOSSES, SCORES, run

__all__ = ["Comparison", "compare", "summarize", "format_summary", "to_markdown"]


@dataclass
class Comparison:
    """What :func:`compare` returns: a tidy table, its summary and the runs.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (setting, seed): every score of :data:`~siamese_lib.experiments.SCORES`
        and the training time.
    summary : pandas.DataFrame
        Mean and standard deviation per setting (:func:`summarize`).
    results : dict
        Setting label -> list of :class:`~siamese_lib.experiments.RunResult`, one per seed.
    """

    table: object
    summary: object
    results: dict


def compare(losses=LOSSES, seeds=(0, 1, 2), *, progress: bool = False, **common) -> Comparison:
    """Run several losses (or settings) over several seeds under one protocol.

    Parameters
    ----------
    losses : sequence of str, or dict
        Loss names (``"contrastive"``, ``"triplet"``), or a dict mapping a
        label to the keyword arguments of :func:`~siamese_lib.experiments.run`
        for that setting, e.g.
        ``{"triplet, batch-hard": {"loss": "triplet", "mining": "batch_hard"}}``.
    seeds : sequence of int
        One run per seed and setting.
    progress : bool
        Progress bars while training.
    **common
        Keyword arguments of :func:`~siamese_lib.experiments.run` shared by every setting.

    Returns
    -------
    Comparison
    """
    import pandas as pd

    settings = losses if isinstance(losses, dict) else {name: {"loss": name} for name in losses}
    if not settings or not list(seeds):
        raise ValueError(f"losses and seeds must be non-empty, got {losses!r} and {seeds!r}")
    rows, results = [], {}
    for label, kwargs in settings.items():
        for seed in seeds:
            result = run(**{**common, **kwargs, "seed": seed, "progress": progress})
            results.setdefault(label, []).append(result)
            rows.append({"loss": label, "seed": seed, **{m: result.metrics[m] for m in SCORES},
                         "seconds": result.seconds})
    table = pd.DataFrame(rows)
    return Comparison(table, summarize(table), results)


def summarize(table):
    """Mean and standard deviation (ddof=1) of every score, per setting, in the input order."""
    grouped = table.drop(columns="seed").groupby("loss", sort=False)
    return grouped.agg(["mean", "std"])


def format_summary(summary, digits: int = 3):
    """The summary as strings ``mean ± std``, one column per score (just the mean for one seed).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"loss": ["a", "a"], "seed": [0, 1], "precision_at_1": [0.9, 0.8]})
    >>> format_summary(summarize(table)).loc["a", "precision_at_1"]
    '0.850 ± 0.071'
    """
    import pandas as pd

    out = pd.DataFrame(index=summary.index)
    for name in summary.columns.get_level_values(0).unique():
        mean, std = summary[(name, "mean")], summary[(name, "std")]
        places = 1 if name == "seconds" else digits
        out[name] = [f"{m:.{places}f}" if np.isnan(s) else f"{m:.{places}f} ± {s:.{places}f}"
                     for m, s in zip(mean, std)]
    return out


def to_markdown(frame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (index included).

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_markdown(pd.DataFrame({"P@1": [0.5]}, index=pd.Index(["a"], name="loss"))), end="")
    | loss | P@1 |
    |---|---|
    | a | 0.5000 |
    """
    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        cells = [str(index)] + [f"{v:.4f}" if isinstance(v, (float, np.floating)) else str(v)
                                for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

r"""Several settings over several seeds (and partitions of the digits) under one protocol.

:func:`compare` trains every setting with :func:`~siamese_lib.experiments.run`
on every seed, and, with ``partitions``, on every partition of the ten
digits into training digits and digits never seen in training
(:data:`PARTITIONS`): that is what Siamese networks are for (Koch et al.
2015), an embedding that places *new* classes well, so that one labelled
example of a class is enough to recognise it. Each run is scored once, in
its own metric (:func:`~siamese_lib.experiments.evaluate`); on unseen digits
the scores include 5-way 1-shot and 5-shot accuracy
(:data:`~siamese_lib.experiments.UNSEEN_SCORES`).

Two methods are compared by **paired** differences: the same partition and
seed give both the same initial weights and the same batches, so their
difference removes most of the run-to-run noise. :func:`paired_difference`
puts a bootstrap confidence interval on the mean difference and reads a
verdict off it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .experiments import LOSSES, SCORES, UNSEEN_SCORES, configure, run

__all__ = ["PARTITIONS", "Comparison", "compare", "summarize", "format_summary", "to_markdown",
           "paired_difference"]

#: Fixed (training digits, unseen digits) partitions: low/high, high/low, even/odd, odd/even.
PARTITIONS = (((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)),
              ((5, 6, 7, 8, 9), (0, 1, 2, 3, 4)),
              ((0, 2, 4, 6, 8), (1, 3, 5, 7, 9)),
              ((1, 3, 5, 7, 9), (0, 2, 4, 6, 8)))


@dataclass
class Comparison:
    """What :func:`compare` returns: a tidy table, its summary and the runs.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (method, partition, seed): ``method``, ``partition``
        (its index in the partitions, or absent without partitions),
        ``seed``, the scores and the training time ``seconds``.
    summary : pandas.DataFrame
        Mean and standard deviation per method (:func:`summarize`).
    results : dict
        Method label -> list of :class:`~siamese_lib.experiments.RunResult`,
        in the order of the table's rows.
    """

    table: object
    summary: object
    results: dict


def compare(settings=LOSSES, seeds=(0, 1, 2), *, partitions=None, progress: bool = False,
            **common) -> Comparison:
    """Run several methods (or settings) over several seeds, and partitions if given.

    Parameters
    ----------
    settings : sequence of str, or dict
        Names :func:`~siamese_lib.experiments.run` accepts as ``loss`` (the
        two losses and the baselines), or a dict mapping a label to the
        keyword arguments of ``run`` for that setting, e.g.
        ``{"triplet, batch-hard": {"loss": "triplet", "mining": "batch_hard"}}``.
    seeds : sequence of int
        One run per seed, setting (and partition).
    partitions : sequence of (training digits, unseen digits), optional
        Train each run on the training digits of a partition and measure it on
        its unseen digits (for example :data:`PARTITIONS`); the scores are
        then :data:`~siamese_lib.experiments.UNSEEN_SCORES`. Without
        partitions: all digits, the scores of :data:`~siamese_lib.experiments.SCORES`.
    progress : bool
        Progress bars while training.
    **common
        Keyword arguments of ``run`` shared by every setting.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        Before anything trains: for empty settings, seeds or partitions, a
        partition whose training and unseen digits overlap, a setting that
        gives ``seed`` (or, with partitions, the classes) that compare sets
        itself, and whatever :func:`~siamese_lib.experiments.configure`
        rejects in any setting.
    """
    import pandas as pd

    settings = settings if isinstance(settings, dict) else {name: {"loss": name} for name in settings}
    if not settings or not list(seeds) or (partitions is not None and not list(partitions)):
        raise ValueError(f"settings, seeds and partitions must be non-empty, got {settings!r}, "
                         f"{seeds!r} and {partitions!r}")
    owned = {"seed", "progress"} | (set() if partitions is None else {"train_classes", "test_classes"})
    for label, kwargs in settings.items():
        clash = sorted(owned & (set(kwargs) | set(common)))
        if clash:
            raise ValueError(f"settings and common arguments must leave {', '.join(clash)} to compare "
                             f"(its seeds{' and partitions' if partitions is not None else ''}), "
                             f"got them for {label!r}")
        checked = {k: v for k, v in {**common, **kwargs}.items()
                   if k not in ("data", "device", "train_classes", "test_classes")}
        configure(**checked)  # every setting checked before the first one trains
    for index, (train_classes, unseen) in enumerate(partitions or ()):
        if set(train_classes) & set(unseen):
            raise ValueError(f"partition {index} must keep its training and unseen digits apart, "
                             f"got {train_classes} and {unseen}")
    splits = [(None, {})] if partitions is None else [
        (index, {"train_classes": train, "test_classes": unseen})
        for index, (train, unseen) in enumerate(partitions)]
    scores = SCORES if partitions is None else UNSEEN_SCORES
    rows, results = [], {}
    for label, kwargs in settings.items():
        for index, classes in splits:
            for seed in seeds:
                result = run(**{**common, **kwargs, **classes, "seed": seed, "progress": progress})
                results.setdefault(label, []).append(result)
                where = {} if index is None else {"partition": index}
                rows.append({"method": label, **where, "seed": seed,
                             **{m: result.metrics[m] for m in scores}, "seconds": result.seconds})
    table = pd.DataFrame(rows)
    return Comparison(table, summarize(table), results)


def summarize(table):
    """Mean and standard deviation (ddof=1) of every score, per method, in the input order.

    Parameters
    ----------
    table : pandas.DataFrame
        A ``Comparison.table``: a ``method`` column, ``seed`` (and
        ``partition``) and one column per score.

    Returns
    -------
    pandas.DataFrame
        Indexed by method, with columns ``(score, "mean")`` and ``(score, "std")``.
    """
    grouped = table.drop(columns=[c for c in ("seed", "partition") if c in table]).groupby(
        "method", sort=False)
    return grouped.agg(["mean", "std"])


def format_summary(summary, digits: int = 3):
    """The summary as strings ``mean ± std``, one column per score (just the mean for one run).

    Parameters
    ----------
    summary : pandas.DataFrame
        As :func:`summarize` returns it.
    digits : int
        Decimal places (one for ``seconds``).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"method": ["a", "a"], "seed": [0, 1], "precision_at_1": [0.9, 0.8]})
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

    Parameters
    ----------
    frame : pandas.DataFrame
        Floats are written with four decimals, everything else as ``str``.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_markdown(pd.DataFrame({"P@1": [0.5]}, index=pd.Index(["a"], name="method"))), end="")
    | method | P@1 |
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


def paired_difference(table, a: str, b: str, score: str, *, n_boot: int = 10_000,
                      seed: int = 0, lower_is_better: bool | None = None) -> dict:
    """Mean of ``a - b`` over paired runs (same partition and seed), with a bootstrap 95 % interval.

    Parameters
    ----------
    table : pandas.DataFrame
        A ``Comparison.table`` (or any table with ``method``, ``seed``,
        optionally ``partition``, and ``score`` columns).
    a, b : str
        The two methods.
    score : str
        The column compared.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    lower_is_better : bool, optional
        Whether a lower ``score`` is better; default: only for ``"eer"``.

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (of ``a - b``), ``pairs`` (their number),
        ``a_wins`` (pairs where ``a`` scored better) and ``verdict``.

    Notes
    -----
    The pairs are resampled with replacement ``n_boot`` times; the interval is
    the 2.5th to 97.5th percentile of the resampled means. The verdict is
    ``"a"`` or ``"b"`` (the method ahead: the higher score, or the lower one
    where lower is better) when the interval excludes 0, and
    ``"no difference"`` when it contains 0.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"method": ["x"] * 3 + ["y"] * 3, "partition": [0, 1, 2] * 2,
    ...                       "seed": [0] * 6, "p1": [0.9, 0.8, 0.85, 0.7, 0.6, 0.65]})
    >>> d = paired_difference(table, "x", "y", "p1")
    >>> round(d["mean"], 3), d["verdict"]
    (0.2, 'x')
    """
    keys = [k for k in ("partition", "seed") if k in table]
    left = table[table["method"] == a].set_index(keys)[score]
    right = table[table["method"] == b].set_index(keys)[score]
    if left.empty or right.empty:
        raise ValueError(f"a and b must be methods of the table, got {a!r} and {b!r}; "
                         f"the table has {sorted(set(table['method']))}")
    if set(left.index) != set(right.index):
        raise ValueError(f"{a!r} and {b!r} must have run on the same partitions and seeds")
    diff = (left - right.loc[left.index]).to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    lower = score == "eer" if lower_is_better is None else lower_is_better
    higher, smaller = (b, a) if lower else (a, b)  # who is ahead when a - b > 0, and when < 0
    verdict = higher if low > 0 else smaller if high < 0 else "no difference"
    wins = (diff < 0) if lower else (diff > 0)
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high), "pairs": len(diff),
            "a_wins": int(wins.sum()), "verdict": verdict}

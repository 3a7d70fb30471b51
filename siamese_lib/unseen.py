r"""The class-disjoint protocol: train on some digits, measure on digits never seen in training.

This is what Siamese networks are for (Koch et al. 2015): an embedding that
places *new* classes well, so that one labelled example of a class is enough
to recognise it. Following Musgrave et al. (2020), the comparison is made on
several fixed partitions of the ten digits (:data:`PARTITIONS`) and several
seeds; each method is trained on the partition's training digits and
measured on its unseen digits, by retrieval (precision@1, MAP@R) and by
5-way 1-shot and 5-shot classification
(:func:`~siamese_lib.evaluation.few_shot_accuracy`).

Two methods are compared by **paired** differences: the same partition and
seed give both the same initial weights and the same batches, so their
difference removes most of the run-to-run noise. :func:`paired_difference`
puts a bootstrap confidence interval on the mean difference and reads a
verdict off it.
"""

from __future__ import annotations

import numpy as np

from .evaluation import few_shot_accuracy, map_at_r, precision_at_1
from .experiments import get_data, run
from .models import embed

__all__ = ["PARTITIONS", "UNSEEN_SCORES", "EPISODES", "measure_unseen", "compare_unseen",
           "paired_difference"]

#: Fixed (training digits, unseen digits) partitions: low/high, high/low, even/odd, odd/even.
PARTITIONS = (((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)),
              ((5, 6, 7, 8, 9), (0, 1, 2, 3, 4)),
              ((0, 2, 4, 6, 8), (1, 3, 5, 7, 9)),
              ((1, 3, 5, 7, 9), (0, 2, 4, 6, 8)))
#: Scores measured on the unseen digits.
UNSEEN_SCORES = ("precision_at_1", "map_at_r", "one_shot", "five_shot")
#: Few-shot episodes per measurement (5-way, 15 queries per class).
EPISODES = 500


def measure_unseen(encoder, split, metric: str = "euclidean", seed: int = 0) -> dict[str, float]:
    """Retrieval and 5-way few-shot scores of ``encoder`` on a split of unseen digits.

    Returns
    -------
    dict
        ``precision_at_1`` and ``map_at_r`` (every image a query against the
        rest of ``split``), ``one_shot`` and ``five_shot`` (mean accuracy over
        :data:`EPISODES` episodes of 5-way 1-shot and 5-shot classification).
    """
    z = embed(encoder, split.images)
    n_way = min(5, len(set(split.labels.tolist())))
    return {
        "precision_at_1": precision_at_1(z, split.labels, metric),
        "map_at_r": map_at_r(z, split.labels, metric),
        "one_shot": few_shot_accuracy(z, split.labels, n_way, 1, episodes=EPISODES, seed=seed,
                                      metric=metric)[0],
        "five_shot": few_shot_accuracy(z, split.labels, n_way, 5, episodes=EPISODES, seed=seed,
                                       metric=metric)[0],
    }


def compare_unseen(methods, partitions=PARTITIONS, seeds=(0, 1), *, progress: bool = False,
                   **common):
    """Train every method on every partition and seed; measure each on the unseen digits.

    Parameters
    ----------
    methods : sequence of str, or dict
        Names :func:`~siamese_lib.experiments.run` accepts as ``loss`` (the two
        losses and the baselines), or a dict mapping a label to ``run`` keywords.
    partitions : sequence of (training digits, unseen digits)
        Default :data:`PARTITIONS`.
    seeds : sequence of int
        One run per seed, method and partition.
    progress : bool
        Progress bars while training.
    **common
        ``run`` keywords shared by every method (e.g. ``**OPEN_SET``).

    Returns
    -------
    pandas.DataFrame
        One row per (method, partition, seed): ``method``, ``partition`` (its
        index), ``seed``, the :data:`UNSEEN_SCORES` and the training time.
    """
    import pandas as pd

    settings = methods if isinstance(methods, dict) else {name: {"loss": name} for name in methods}
    if not settings or not list(seeds) or not list(partitions):
        raise ValueError(f"methods, partitions and seeds must be non-empty, got {methods!r}, "
                         f"{partitions!r} and {seeds!r}")
    test = get_data(common.get("data")).test
    rows = []
    for label, kwargs in settings.items():
        for index, (train_classes, unseen) in enumerate(partitions):
            if set(train_classes) & set(unseen):
                raise ValueError(f"partition {index} must keep its training and unseen digits apart, "
                                 f"got {train_classes} and {unseen}")
            for seed in seeds:
                result = run(**{**common, **kwargs, "seed": seed, "progress": progress,
                                "train_classes": train_classes, "test_classes": unseen})
                scores = measure_unseen(result.model, test.subset(unseen), seed=seed)
                rows.append({"method": label, "partition": index, "seed": seed, **scores,
                             "seconds": result.seconds})
    return pd.DataFrame(rows)


def paired_difference(table, a: str, b: str, score: str, *, n_boot: int = 10_000,
                      seed: int = 0) -> dict:
    """Mean of ``a - b`` over paired runs (same partition and seed), with a bootstrap 95 % interval.

    The pairs are resampled with replacement ``n_boot`` times; the interval is
    the 2.5th to 97.5th percentile of the resampled means. The verdict is
    ``"a"`` or ``"b"`` (the method ahead) when the interval excludes 0, and
    ``"no difference"`` when it contains 0.

    Returns
    -------
    dict
        ``mean``, ``low``, ``high``, ``pairs`` (their number), ``a_wins``
        (pairs where ``a`` scored higher) and ``verdict``.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"method": ["x"] * 3 + ["y"] * 3, "partition": [0, 1, 2] * 2,
    ...                       "seed": [0] * 6, "p1": [0.9, 0.8, 0.85, 0.7, 0.6, 0.65]})
    >>> d = paired_difference(table, "x", "y", "p1")
    >>> round(d["mean"], 3), d["verdict"]
    (0.2, 'x')
    """
    keys = ["partition", "seed"]
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
    verdict = a if low > 0 else b if high < 0 else "no difference"
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high), "pairs": len(diff),
            "a_wins": int((diff > 0).sum()), "verdict": verdict}

"""The evidence behind the book's defaults, computed without the test split.

    python benchmarks/select_defaults.py              # every part, about 35 minutes on 2 cores
    python benchmarks/select_defaults.py margins lr   # some of them

Each part scores its candidates on the validation split, one row per seed
(seeds 0-2), prints the mean per candidate and writes the rows to
``siamese_lib/evidence/<part>.csv``, where :func:`siamese_lib.tuning.evidence`
reads them (chapter 8a shows them; a test checks that the library's defaults
are what they select).

* ``margins``: the margin candidates of every (loss, metric, normalize) in
  ``MARGINS``; the best mean validation MAP@R of each is its
  ``tuning.DEFAULT_MARGIN``. A best margin at an end of its candidates is
  reported: widen them.
* ``lr``: AdamW's learning rate per loss (each with its default margin).
* ``balance``: the contrastive loss averaged over all pairs of a batch (the
  default) against positives and negatives weighed equally.
* ``epochs`` and ``embedding_dim``: budgets and sizes per loss; the rule of
  ``tuning`` picks the cheapest candidate not worse than the best by a paired 95 % t-interval.
* ``augment``: with and without ``tuning.AUGMENT``. The 500 validation
  images are too few to resolve a point of precision@1, so this part holds out
  100 images per digit of the *training* split (three disjoint folds of 1,000
  images, the size of the test split), trains on the other 2,500 and measures
  on the held-out fold (its scores are written as ``val_*``; ``seed`` is the fold).

Every row holds the setting that varies and the loss; the other settings are
the library's defaults when the script ran. PyTorch runs on one thread here, so
that the rows do not depend on the number of cores (another thread count rounds
differently) and parts can run side by side.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from siamese_lib import data, evaluation, experiments, tuning
from siamese_lib.models import embed

OUT = Path(__file__).resolve().parent.parent / "siamese_lib" / "evidence"
SEEDS = (0, 1, 2)
#: Candidates per (loss, metric, normalize). Unit-sphere distances are at most 2
#: (euclidean, cosine) or 4 (sqeuclidean); Manhattan distances in 32 dimensions are
#: several times larger than Euclidean ones. The cosine distance ignores the length of
#: the embeddings, so normalising them changes nothing and its margin serves both.
MARGINS = {
    ("contrastive", "euclidean", False): (0.5, 1.0, 2.0),
    ("contrastive", "sqeuclidean", False): (0.5, 1.0, 2.0),
    ("contrastive", "manhattan", False): (2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
    ("contrastive", "cosine", False): (0.25, 0.5, 1.0, 1.5),
    ("contrastive", "euclidean", True): (0.5, 1.0, 1.4),
    ("contrastive", "sqeuclidean", True): (0.5, 1.0, 2.0, 3.0),
    ("triplet", "sqeuclidean", False): (2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
    ("triplet", "euclidean", False): (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    ("triplet", "manhattan", False): (2.0, 4.0, 8.0, 16.0, 32.0),
    ("triplet", "cosine", False): (0.1, 0.25, 0.5, 1.0),
    ("triplet", "sqeuclidean", True): (0.1, 0.2, 0.5, 1.0, 2.0),
    ("triplet", "euclidean", True): (0.1, 0.25, 0.5, 1.0, 1.4),
}
FOLD_SIZE = 100  # images per digit held out of the training split


#: Learning rates tried for each loss (the default, a third of it and three times it).
LRS = (1e-3, 3e-3, 1e-2)


def validation_rows(**kwargs) -> list[dict]:
    """Validation MAP@R and precision@1 of ``experiments.run(**kwargs)``, one row per seed of ``SEEDS``."""
    val = experiments.get_data().val
    rows = []
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", experiments.MarginWarning)
            result = experiments.run(seed=seed, **kwargs)
        z, metric = embed(result.model, val.images), experiments._eval_metric(result.config["metric"])
        rows.append({**kwargs, "seed": seed, "val_map_at_r": evaluation.map_at_r(z, val.labels, metric),
                     "val_precision_at_1": evaluation.precision_at_1(z, val.labels, metric)})
        print(rows[-1], flush=True)
    return rows


def _margin_sweep(combinations) -> pd.DataFrame:
    rows = [row for (loss, metric, normalize) in combinations
            for m in MARGINS[(loss, metric, normalize)]
            for row in validation_rows(loss=loss, metric=metric, normalize=normalize, margin=m)]
    table = pd.DataFrame(rows)
    means = table.groupby(["loss", "metric", "normalize", "margin"], sort=False)["val_map_at_r"].mean()
    for (loss, metric, normalize), group in means.groupby(level=[0, 1, 2], sort=False):
        best = group.idxmax()[3]
        candidates = MARGINS[(loss, metric, normalize)]
        at_end = best in (candidates[0], candidates[-1])
        edge = " (at the end of the candidates: widen them)" if at_end else ""
        print(f"best margin {loss}, {metric}, normalize={normalize}: {best:g}{edge}; "
              f"default {tuning.DEFAULT_MARGIN.get((loss, metric, normalize))}")
    return table


def margins() -> pd.DataFrame:
    return _margin_sweep(list(MARGINS))


def lr() -> pd.DataFrame:
    return pd.DataFrame([row for loss in experiments.LOSSES for rate in LRS
                         for row in validation_rows(loss=loss, lr=rate)])


def balance() -> pd.DataFrame:
    return pd.DataFrame([row for flag in (False, True)
                         for row in validation_rows(loss="contrastive", balance=flag)])


#: Budgets and embedding sizes tried for each loss.
EPOCHS = (10, 15, 20)
EMBEDDING_DIMS = (16, 32, 64)


def epochs() -> pd.DataFrame:
    return pd.DataFrame([row for loss in experiments.LOSSES for e in EPOCHS
                         for row in validation_rows(loss=loss, epochs=e)])


def embedding_dim() -> pd.DataFrame:
    return pd.DataFrame([row for loss in experiments.LOSSES for dim in EMBEDDING_DIMS
                         for row in validation_rows(loss=loss, embedding_dim=dim)])


def held_out_fold(k: int) -> data.MNIST:
    """Train on the training split minus fold ``k``; fold ``k`` takes the place of the test split."""
    mnist = experiments.get_data()
    labels = mnist.train.labels.numpy()
    held = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        held[np.flatnonzero(labels == digit)[k * FOLD_SIZE:(k + 1) * FOLD_SIZE]] = True
    train = data.Split(mnist.train.images[~held], mnist.train.labels[~held])
    fold = data.Split(mnist.train.images[held], mnist.train.labels[held])
    return data.MNIST(train, mnist.val, fold, f"{mnist.source}, training fold {k} held out")


def augment() -> pd.DataFrame:
    rows = []
    for loss in experiments.LOSSES:
        for flag, transform in ((False, None), (True, tuning.AUGMENT)):
            for k in range(3):
                metrics = experiments.run(loss, seed=k, data=held_out_fold(k), transform=transform).metrics
                rows.append({"loss": loss, "augment": flag, "seed": k,
                             "val_map_at_r": metrics["map_at_r"],
                             "val_precision_at_1": metrics["precision_at_1"]})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


PARTS = {"margins": margins, "lr": lr, "balance": balance, "epochs": epochs,
         "embedding_dim": embedding_dim, "augment": augment}


def main(argv) -> None:
    torch.set_num_threads(1)
    unknown = set(argv) - set(PARTS)
    if unknown:
        raise SystemExit(f"parts must be among {list(PARTS)}, got {sorted(unknown)}")
    for name in argv or PARTS:
        table = PARTS[name]()
        table.to_csv(OUT / f"{name}.csv", index=False, float_format="%.6g")
        scores = [c for c in table.columns if c.startswith("val_")]
        keys = [c for c in table.columns if c not in scores and c != "seed"]
        print(f"== {name} (mean over seeds; written to {OUT / name}.csv)\n"
              f"{table.groupby(keys, sort=False)[scores].mean().round(4).to_string()}\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

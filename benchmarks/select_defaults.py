"""The evidence behind the book's defaults, computed without the test split.

    python benchmarks/select_defaults.py                # all three parts, about 25 minutes
    python benchmarks/select_defaults.py margins epochs # some of them

* ``margins``: validation MAP@R and precision@1, mean over seeds 0-2, for each
  margin candidate of each (loss, metric, normalize) combination; the best
  candidate of each is ``experiments.DEFAULT_MARGIN`` (chapter 8a runs the
  unnormalised default-metric sweeps with seed 0 only). Every best margin must
  lie inside its candidates, not at an end, or the sweep says so.
* ``epochs``: the default budget against 20 epochs, on validation, seeds 0-2.
* ``augment``: with and without ``experiments.AUGMENT``. The 500 validation
  images are too few to resolve a point of precision@1, so this part holds out
  100 images per digit of the *training* split (three disjoint folds of 1,000
  images, the size of the test split), trains on the other 2,500 and measures
  on the held-out fold.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd

from siamese_lib import data, evaluation, experiments
from siamese_lib.models import embed

SEEDS = (0, 1, 2)
#: Candidates per (loss, metric, normalize). Unit-sphere distances are at most 2
#: (euclidean, cosine) or 4 (sqeuclidean); Manhattan distances in 32 dimensions are
#: several times larger than Euclidean ones. The cosine distance ignores the length of
#: the embeddings, so normalising them changes nothing and its margin serves both.
MARGINS = {
    ("contrastive", "euclidean", False): (0.5, 1.0, 2.0),
    ("contrastive", "sqeuclidean", False): (0.5, 1.0, 2.0),
    ("contrastive", "manhattan", False): (2.0, 4.0, 8.0, 16.0),
    ("contrastive", "cosine", False): (0.25, 0.5, 1.0, 1.5),
    ("contrastive", "euclidean", True): (0.5, 1.0, 1.4),
    ("contrastive", "sqeuclidean", True): (0.5, 1.0, 2.0, 3.0),
    ("triplet", "sqeuclidean", False): (2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
    ("triplet", "euclidean", False): (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    ("triplet", "manhattan", False): (2.0, 4.0, 8.0),
    ("triplet", "cosine", False): (0.1, 0.25, 0.5),
    ("triplet", "sqeuclidean", True): (0.1, 0.2, 0.5, 1.0, 2.0),
    ("triplet", "euclidean", True): (0.1, 0.25, 0.5, 1.0, 1.4),
}
FOLD_SIZE = 100  # images per digit held out of the training split


def validation_scores(**kwargs) -> dict:
    """Mean validation MAP@R and precision@1 of ``experiments.run(**kwargs)`` over ``SEEDS``."""
    val = experiments.get_data().val
    scores = []
    for seed in SEEDS:
        result = experiments.run(seed=seed, **kwargs)
        z, metric = embed(result.model, val.images), result.config["metric"]
        scores.append((evaluation.map_at_r(z, val.labels, metric),
                       evaluation.precision_at_1(z, val.labels, metric)))
    mapr, p1 = np.mean(scores, axis=0)
    return {"val MAP@R": mapr, "val P@1": p1}


def margins() -> pd.DataFrame:
    rows = []
    for (loss, metric, normalize), candidates in MARGINS.items():
        for m in candidates:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", experiments.MarginWarning)
                scores = validation_scores(loss=loss, metric=metric, normalize=normalize, margin=m)
            rows.append({"loss": loss, "metric": metric, "normalize": normalize, "margin": m,
                         **scores})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    best = table.loc[table.groupby(["loss", "metric", "normalize"], sort=False)["val MAP@R"].idxmax()]
    for _, row in best.iterrows():
        candidates = MARGINS[(row["loss"], row["metric"], row["normalize"])]
        edge = " (at the end of the candidates: widen them)" if row["margin"] in (
            candidates[0], candidates[-1]) else ""
        print(f"best margin {row['loss']}, {row['metric']}, normalize={row['normalize']}: "
              f"{row['margin']:g}{edge}")
    return table


def epochs() -> pd.DataFrame:
    rows = [{"loss": loss, "epochs": e, **validation_scores(loss=loss, epochs=e)}
            for loss in experiments.LOSSES for e in (experiments.EPOCHS, 20)]
    return pd.DataFrame(rows)


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
        for name, transform in (("none", None), ("AUGMENT", experiments.AUGMENT)):
            metrics = [experiments.run(loss, seed=k, data=held_out_fold(k), transform=transform).metrics
                       for k in range(3)]
            rows.append({"loss": loss, "augmentation": name,
                         **{f"fold {m}": np.mean([x[m] for x in metrics])
                            for m in ("precision_at_1", "map_at_r")}})
    return pd.DataFrame(rows)


PARTS = {"margins": margins, "epochs": epochs, "augment": augment}


def main(argv) -> None:
    unknown = set(argv) - set(PARTS)
    if unknown:
        raise SystemExit(f"parts must be among {list(PARTS)}, got {sorted(unknown)}")
    for name in argv or PARTS:
        print(f"== {name}\n{PARTS[name]().round(4).to_string(index=False)}\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

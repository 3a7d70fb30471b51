"""Settings for digits never seen in training, chosen on validation *classes*, never on the test digits.

    python benchmarks/select_unseen.py                       # every method
    python benchmarks/select_unseen.py contrastive triplet   # some of them

For each partition of ``comparison.PARTITIONS`` used here, the test digits are
left alone: two of the partition's *training* digits are held out as
validation classes, the method trains on the other three, and is measured on
the held-out two (their training-split images, which it never saw). Each
candidate changes one thing from the book's defaults, as a practitioner would
try: normalisation, embedding size, epochs, margin, mining. The table gives
MAP@R and precision@1 on the validation classes, mean over folds and seeds;
``tuning.UNSEEN`` is what :func:`siamese_lib.tuning.unseen_winner` selects
from it. The candidates are ``tuning.UNSEEN_CANDIDATES``. The rows (one per
method, candidate, fold and seed) are written to
``siamese_lib/evidence/unseen.csv``, read by ``tuning.evidence("unseen")``;
running some methods only replaces their rows.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pandas as pd

from siamese_lib import comparison, evaluation, experiments, tuning
from siamese_lib.models import embed

OUT = Path(__file__).resolve().parent.parent / "siamese_lib" / "evidence" / "unseen.csv"
SEEDS = (0, 1)
#: (training digits, validation digits) per fold: the training side of two partitions, split 3 + 2.
FOLDS = tuple((train[:3], train[3:]) for train, _ in comparison.PARTITIONS[::2])
CANDIDATES = tuning.UNSEEN_CANDIDATES


def validation_rows(loss: str, candidate: dict) -> list[dict]:
    mnist = experiments.get_data()
    kwargs = tuning.unseen_settings(loss, candidate) if loss in experiments.LOSSES else {}
    rows = []
    for fold, (train_classes, val_classes) in enumerate(FOLDS):
        held_out = mnist.train.subset(val_classes)
        for seed in SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # collapse warnings are part of what is measured
                result = experiments.run(loss, train_classes=train_classes, test_classes=val_classes,
                                         seed=seed, **kwargs)
            z = embed(result.model, held_out.images)
            metric = "euclidean" if loss in experiments.BASELINES else result.config["metric"]
            metric = "euclidean" if metric == "sqeuclidean" else metric
            rows.append({"fold": fold, "seed": seed,
                         "map_at_r": evaluation.map_at_r(z, held_out.labels, metric),
                         "precision_at_1": evaluation.precision_at_1(z, held_out.labels, metric)})
    return rows


def main(methods) -> None:
    rows = []
    for method in methods:
        candidates = CANDIDATES if method in experiments.LOSSES else {"defaults": {}}
        for name, candidate in candidates.items():
            rows += [{"method": method, "candidate": name, **row}
                     for row in validation_rows(method, candidate)]
            print(f"{method}, {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items()
                                                   if isinstance(v, float)), flush=True)
    table = pd.DataFrame(rows)
    if OUT.exists():  # keep the stored rows of the methods not rerun
        stored = pd.read_csv(OUT)
        table = pd.concat([stored[~stored["method"].isin(methods)], table], ignore_index=True)
    table.to_csv(OUT, index=False, float_format="%.6g")
    means = table.groupby(["method", "candidate"], sort=False)[["map_at_r", "precision_at_1"]].mean()
    print(means.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["pixels", "untrained", "softmax", *experiments.LOSSES])

"""The class-disjoint protocol: partitions, measurements on unseen digits, paired differences."""

import numpy as np
import pandas as pd
import pytest

from siamese_lib import evaluation, experiments, unseen
from siamese_lib.models import embed


def test_partitions_split_the_ten_digits():
    for train, test in unseen.PARTITIONS:
        assert sorted(train + test) == list(range(10)) and not set(train) & set(test)
    assert len(set(unseen.PARTITIONS)) == len(unseen.PARTITIONS) >= 3


def test_compare_unseen_trains_on_the_training_digits_and_measures_the_others(small_mnist):
    partitions = (((0, 1, 2), (3, 4, 5, 6)),)
    table = unseen.compare_unseen(["pixels", "untrained"], partitions, seeds=(0,), data=small_mnist)
    assert list(table["method"]) == ["pixels", "untrained"]
    assert set(unseen.UNSEEN_SCORES) <= set(table.columns)
    # the pixel row, recomputed by hand on the unseen digits only
    test = small_mnist.test.subset((3, 4, 5, 6))
    z = embed(experiments.run("pixels", data=small_mnist).model, test.images)
    row = table.iloc[0]
    assert row["precision_at_1"] == evaluation.precision_at_1(z, test.labels)
    assert row["one_shot"] == evaluation.few_shot_accuracy(z, test.labels, 4, 1,
                                                           episodes=unseen.EPISODES, seed=0)[0]
    with pytest.raises(ValueError, match="keep its training and unseen digits apart"):
        unseen.compare_unseen(["pixels"], (((0, 1), (1, 2)),), seeds=(0,), data=small_mnist)


def _table(a, b):
    runs = [(0, 0), (0, 1), (1, 0), (1, 1)]  # (partition, seed)
    rows = [{"method": m, "partition": p, "seed": s, "score": v}
            for m, values in (("a", a), ("b", b)) for (p, s), v in zip(runs, values)]
    return pd.DataFrame(rows)


def test_paired_difference_matches_a_hand_bootstrap():
    a, b = [0.80, 0.82, 0.75, 0.79], [0.78, 0.79, 0.76, 0.74]
    got = unseen.paired_difference(_table(a, b), "a", "b", "score", n_boot=2000, seed=5)
    diff = np.subtract(a, b)
    rng = np.random.default_rng(5)
    means = [diff[rng.integers(0, 4, size=4)].mean() for _ in range(2000)]
    assert got["mean"] == pytest.approx(diff.mean())
    assert got["low"] == pytest.approx(np.percentile(means, 2.5))
    assert got["high"] == pytest.approx(np.percentile(means, 97.5))
    assert got["pairs"] == 4 and got["a_wins"] == 3


def test_paired_difference_pairs_by_partition_and_seed_and_reads_a_verdict():
    ahead = unseen.paired_difference(_table([0.9, 0.8, 0.7, 0.6], [0.85, 0.75, 0.65, 0.55]),
                                     "a", "b", "score")
    assert ahead["verdict"] == "a" and ahead["low"] == pytest.approx(0.05)  # every pair differs by 0.05
    # unpaired, the spread between runs would hide that; paired, the shuffled order matters
    shuffled = _table([0.9, 0.8, 0.7, 0.6], [0.55, 0.65, 0.75, 0.85])
    assert unseen.paired_difference(shuffled, "a", "b", "score")["verdict"] == "no difference"
    behind = unseen.paired_difference(_table([0.5] * 4, [0.6, 0.61, 0.62, 0.6]), "a", "b", "score")
    assert behind["verdict"] == "b"
    with pytest.raises(ValueError, match="a and b must be methods of the table"):
        unseen.paired_difference(_table([0.5] * 4, [0.6] * 4), "a", "c", "score")

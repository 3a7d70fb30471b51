"""comparison: settings over seeds and partitions, scored once each, and paired differences."""

import itertools

import numpy as np
import pandas as pd
import pytest

from siamese_lib import comparison, evaluation, experiments
from siamese_lib.models import embed


def test_partitions_split_the_ten_digits():
    for train, test in comparison.PARTITIONS:
        assert sorted(train + test) == list(range(10)) and not set(train) & set(test)
    assert len(set(comparison.PARTITIONS)) == len(comparison.PARTITIONS) >= 3


def test_compare_with_partitions_trains_on_the_training_digits_and_measures_the_others(small_mnist):
    partitions = (((0, 1, 2), (3, 4, 5, 6)),)
    result = comparison.compare(["pixels", "untrained"], seeds=(0,), partitions=partitions,
                                data=small_mnist)
    table = result.table
    assert list(table["method"]) == ["pixels", "untrained"]
    assert list(table.columns[:3]) == ["method", "partition", "seed"]
    assert set(experiments.UNSEEN_SCORES) <= set(table.columns)
    # the pixel row, recomputed by hand on the unseen digits only
    test = small_mnist.test.subset((3, 4, 5, 6))
    z = embed(result.results["pixels"][0].model, test.images)
    row = table.iloc[0]
    assert row["precision_at_1"] == evaluation.precision_at_1(z, test.labels)
    assert row["one_shot"] == evaluation.few_shot_accuracy(z, test.labels, 4, 1,
                                                           episodes=experiments.EPISODES, seed=0)[0]
    with pytest.raises(ValueError, match="keep its training and unseen digits apart"):
        comparison.compare(["pixels"], seeds=(0,), partitions=(((0, 1), (1, 2)),), data=small_mnist)


def test_each_run_is_scored_once_in_its_own_metric(small_mnist, monkeypatch):
    calls = []
    real = experiments.evaluate

    def counting(encoder, test, val, metric="euclidean", **kwargs):
        calls.append(metric)
        return real(encoder, test, val, metric, **kwargs)

    monkeypatch.setattr(experiments, "evaluate", counting)
    result = comparison.compare({"cosine": {"loss": "untrained", "metric": "cosine"}}, seeds=(0,),
                                partitions=(((0, 1, 2), (3, 4, 5, 6)),), data=small_mnist)
    assert calls == ["cosine"]  # once per run, in the run's metric
    test = small_mnist.test.subset((3, 4, 5, 6))
    z = embed(result.results["cosine"][0].model, test.images)
    assert result.table.loc[0, "map_at_r"] == evaluation.map_at_r(z, test.labels, "cosine")
    assert result.table.loc[0, "map_at_r"] != evaluation.map_at_r(z, test.labels, "euclidean")


def _table(a, b):
    runs = [(0, 0), (0, 1), (1, 0), (1, 1)]  # (partition, seed)
    rows = [{"method": m, "partition": p, "seed": s, "score": v}
            for m, values in (("a", a), ("b", b)) for (p, s), v in zip(runs, values)]
    return pd.DataFrame(rows)


def test_paired_difference_matches_the_exact_bootstrap_distribution():
    """With 4 pairs there are 4**4 equally likely resamples: their means give exact percentiles."""
    a, b = [0.80, 0.82, 0.75, 0.79], [0.78, 0.79, 0.76, 0.74]
    diff = np.subtract(a, b)
    means = np.sort([np.mean(pick) for pick in itertools.product(diff, repeat=4)])

    def quantile(q):  # the smallest resample mean with at least a fraction q of the mass at or below
        return means[int(np.ceil(q * len(means))) - 1]

    got = comparison.paired_difference(_table(a, b), "a", "b", "score", n_boot=40_000, seed=5)
    assert got["mean"] == pytest.approx(diff.mean())
    assert got["low"] == pytest.approx(quantile(0.025), abs=0.0026)   # one step of the resample grid
    assert got["high"] == pytest.approx(quantile(0.975), abs=0.0026)
    assert got["pairs"] == 4 and got["a_wins"] == 3


def test_paired_difference_pairs_by_partition_and_seed_and_reads_a_verdict():
    ahead = comparison.paired_difference(_table([0.9, 0.8, 0.7, 0.6], [0.85, 0.75, 0.65, 0.55]),
                                         "a", "b", "score")
    assert ahead["verdict"] == "a" and ahead["low"] == pytest.approx(0.05)  # every pair differs by 0.05
    # unpaired, the spread between runs would hide that; paired, the shuffled order matters
    shuffled = _table([0.9, 0.8, 0.7, 0.6], [0.55, 0.65, 0.75, 0.85])
    assert comparison.paired_difference(shuffled, "a", "b", "score")["verdict"] == "no difference"
    behind = comparison.paired_difference(_table([0.5] * 4, [0.6, 0.61, 0.62, 0.6]), "a", "b", "score")
    assert behind["verdict"] == "b"
    with pytest.raises(ValueError, match="a and b must be methods of the table"):
        comparison.paired_difference(_table([0.5] * 4, [0.6] * 4), "a", "c", "score")
    without_partitions = _table([0.9, 0.8, 0.7, 0.6], [0.85, 0.75, 0.65, 0.55])
    without_partitions["seed"] = [0, 1, 2, 3] * 2
    assert comparison.paired_difference(without_partitions.drop(columns="partition"), "a", "b",
                                        "score")["pairs"] == 4


def test_a_lower_is_better_score_reads_the_verdict_the_other_way():
    errors = _table([0.10, 0.11, 0.12, 0.10], [0.20, 0.21, 0.22, 0.20])  # a makes fewer errors
    errors["eer"] = errors["score"]
    as_eer = comparison.paired_difference(errors, "a", "b", "eer")
    assert as_eer["verdict"] == "a" and as_eer["a_wins"] == 4 and as_eer["mean"] < 0
    assert comparison.paired_difference(errors, "a", "b", "score")["verdict"] == "b"
    assert comparison.paired_difference(errors, "a", "b", "score", lower_is_better=True)["verdict"] == "a"


def test_compare_checks_every_setting_before_anything_trains(small_mnist, monkeypatch):
    monkeypatch.setattr(comparison, "run", lambda **kw: pytest.fail("trained"))
    settings = {"fine": {"loss": "triplet"}, "bad": {"loss": "contrastive", "mining": "semi_hard"}}
    with pytest.raises(ValueError, match="mining \\(for the contrastive loss\\) must be one of"):
        comparison.compare(settings, seeds=(0,), data=small_mnist)
    with pytest.raises(ValueError, match="must leave seed to compare .* got them for 'triplet'"):
        comparison.compare(["triplet"], seeds=(0,), seed=3, data=small_mnist)
    with pytest.raises(ValueError, match="must leave train_classes to compare .* got them for 'pixels'"):
        comparison.compare({"pixels": {"loss": "pixels", "train_classes": (0, 1)}}, seeds=(0,),
                           partitions=comparison.PARTITIONS, data=small_mnist)

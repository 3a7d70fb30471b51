"""The stored validation evidence (siamese_lib/evidence) and the defaults it sets."""

import sys
from pathlib import Path

import pandas as pd
import pytest

from siamese_lib import experiments, tuning

ROOT = Path(__file__).resolve().parent.parent


def _means(part, keys, score="val_map_at_r"):
    return tuning.evidence(part).groupby(keys)[score].mean()


def test_default_margins_are_what_the_three_seed_sweep_selects():
    table = tuning.evidence("margins")
    assert set(table["seed"]) == {0, 1, 2}
    means = _means("margins", ["loss", "metric", "normalize", "margin"])
    for (loss, metric, normalize), scores in means.groupby(level=[0, 1, 2]):
        margins = scores.index.get_level_values("margin")
        best = margins[scores.to_numpy().argmax()]
        assert tuning.DEFAULT_MARGIN[(loss, metric, bool(normalize))] == best, (loss, metric, normalize)
        assert margins.min() < best < margins.max(), f"{loss}: best margin {best} at an end of the sweep"


def test_the_default_learning_rate_is_what_validation_selects_for_both_losses():
    means = _means("lr", ["loss", "lr"])
    for loss in experiments.LOSSES:
        rates = means[loss]
        assert rates.idxmax() == pytest.approx(experiments.LR), loss
        assert rates.index.min() < experiments.LR < rates.index.max()  # bracketed


def test_selection_rejects_unknown_parts():
    with pytest.raises(ValueError, match="one of the stored evidence tables .*margins.* got 'margin'"):
        tuning.evidence("margin")


def _open_set_table(gains):
    """Runs of two losses over two folds x two seeds: defaults at 0.5, each candidate at 0.5 + its gains."""
    rows = []
    for loss in ("contrastive", "triplet"):
        for k, (fold, seed) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            rows.append({"method": loss, "candidate": "defaults", "fold": fold, "seed": seed,
                         "map_at_r": 0.5})
            for name, per_loss in gains.items():
                rows.append({"method": loss, "candidate": name, "fold": fold, "seed": seed,
                             "map_at_r": 0.5 + per_loss[loss][k]})
    return pd.DataFrame(rows)


def test_open_set_winner_needs_every_paired_run_of_both_losses():
    everywhere = {"contrastive": [0.01] * 4, "triplet": [0.02] * 4}
    bigger = {"contrastive": [0.05] * 4, "triplet": [0.05] * 4}
    one_pair_lost = {"contrastive": [0.2, 0.2, 0.2, -0.01], "triplet": [0.2] * 4}
    one_loss_only = {"contrastive": [0.1] * 4, "triplet": [-0.1] * 4}
    assert tuning.open_set_winner(_open_set_table({"a": everywhere})) == "a"
    assert tuning.open_set_winner(_open_set_table({"a": everywhere, "b": bigger})) == "b"
    assert tuning.open_set_winner(_open_set_table({"c": one_pair_lost, "d": one_loss_only})) == "defaults"
    with pytest.raises(ValueError, match="table must hold the 'defaults' runs of 'contrastive'"):
        table = _open_set_table({"a": everywhere})
        tuning.open_set_winner(table[table["candidate"] != "defaults"])


def test_open_set_is_what_the_class_disjoint_validation_selects():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from select_open_set import CANDIDATES

    table = tuning.evidence("open_set")
    assert set(table["candidate"]) == set(CANDIDATES)  # every candidate of the script was run
    winner = tuning.open_set_winner(table)
    assert experiments.OPEN_SET == CANDIDATES[winner]


def test_the_all_pairs_contrastive_average_is_what_validation_selects():
    means = tuning.evidence("balance").groupby("balance")["val_map_at_r"].mean()
    assert means.idxmax() == bool(experiments.run.__kwdefaults__["balance"])  # the default: all pairs

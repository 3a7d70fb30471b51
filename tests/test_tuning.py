"""Every default of the library against the stored validation evidence (siamese_lib/evidence)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from siamese_lib import experiments, tuning


@pytest.mark.parametrize("name", list(tuning.DEFAULTS))
def test_every_default_is_what_its_stored_evidence_selects(name):
    value, source = tuning.DEFAULTS[name]
    assert tuning.select(source) == value, name


def test_every_default_a_reader_meets_is_listed_with_its_evidence():
    listed = {name: value for name, (value, _) in tuning.DEFAULTS.items()}
    assert listed["LR"] == tuning.LR and listed["EPOCHS"] == tuning.EPOCHS
    assert listed["EMBEDDING_DIM"] == tuning.EMBEDDING_DIM
    assert listed["AUGMENT"] == (tuning.AUGMENT is not None)
    assert listed["BALANCE contrastive"] == tuning.BALANCE and listed["UNSEEN"] == tuning.UNSEEN
    margins = {(s.where["loss"], s.where["metric"], s.where["normalize"]): value
               for value, s in tuning.DEFAULTS.values() if s.part == "margins"}
    assert margins == tuning.DEFAULT_MARGIN
    # and run fills in exactly these values where an argument is left out
    config = experiments._configure("contrastive", {}, dict(metric=None, normalize=False, seed=0))
    assert (config["lr"], config["epochs"], config["embedding_dim"], config["transform"],
            config["balance"]) == (tuning.LR, tuning.EPOCHS, tuning.EMBEDDING_DIM, tuning.AUGMENT,
                                   tuning.BALANCE)
    for loss in experiments.LOSSES:
        config = experiments._configure(loss, {}, dict(metric=None, normalize=False, seed=0))
        assert config["margin"] == tuning.DEFAULT_MARGIN[(loss, config["metric"], False)]


@pytest.mark.parametrize("name", [n for n, (_, s) in tuning.DEFAULTS.items() if s.rule == "best"
                                  and s.part in ("margins", "lr", "embedding_dim")])
def test_a_best_numeric_candidate_lies_inside_the_candidates_tried(name):
    value, source = tuning.DEFAULTS[name]
    table = tuning.evidence(source.part)
    for key, v in source.where.items():
        table = table[table[key] == v]
    candidates = sorted(set(table[source.column]))
    assert len(candidates) >= 3 and candidates[0] < value < candidates[-1], (name, candidates)


def test_every_default_has_three_seeds_per_candidate():
    for name, (_, source) in tuning.DEFAULTS.items():
        if source.rule == "unseen":
            continue
        table = tuning.evidence(source.part)
        for key, v in source.where.items():
            table = table[table[key] == v]
        assert not table.empty, name
        assert (table.groupby(source.column)["seed"].nunique() == 3).all(), name


def test_a_default_without_rows_fails_with_a_message():
    with pytest.raises(ValueError, match="no row of 'margins' with .*'chebyshev'"):
        tuning.select(tuning.Evidence("margins", "margin", {"loss": "triplet", "metric": "chebyshev"}))
    with pytest.raises(ValueError, match="one of the stored evidence tables .*margins.* got 'margin'"):
        tuning.evidence("margin")
    with pytest.raises(ValueError, match="rule must be 'best', 'cheapest' or 'unseen', got 'worst'"):
        tuning.select(tuning.Evidence("lr", "lr", rule="worst"))


def _fake_evidence(monkeypatch, table):
    monkeypatch.setattr(tuning, "evidence", lambda part: table)


def test_the_best_rule_takes_the_best_mean_over_seeds_and_losses(monkeypatch):
    rows = [(loss, c, seed, score) for loss, c, seed, score in [
        ("a", 1, 0, 0.90), ("a", 1, 1, 0.70), ("b", 1, 0, 0.80), ("b", 1, 1, 0.80),   # mean 0.800
        ("a", 2, 0, 0.81), ("a", 2, 1, 0.81), ("b", 2, 0, 0.80), ("b", 2, 1, 0.79)]]  # mean 0.8025
    _fake_evidence(monkeypatch, pd.DataFrame(rows, columns=["loss", "c", "seed", "val_map_at_r"]))
    assert tuning.select(tuning.Evidence("x", "c")) == 2
    assert tuning.select(tuning.Evidence("x", "c", {"loss": "a"})) == 2      # 0.81 > 0.80
    assert tuning.select(tuning.Evidence("x", "c", {"loss": "b"})) == 1      # 0.80 > 0.795


def test_the_cheapest_rule_buys_a_budget_only_when_the_paired_interval_says_it_pays(monkeypatch):
    def table(gains):  # candidate 10 at 0.9 on five seeds, candidate 20 at 0.9 + gains
        rows = [(10, s, 0.9) for s in range(5)] + [(20, s, 0.9 + g) for s, g in enumerate(gains)]
        return pd.DataFrame(rows, columns=["epochs", "seed", "val_map_at_r"])

    noisy = [0.02, -0.01, 0.015, -0.005, 0.01]       # better on average, not on every seed
    steady = [0.010, 0.012, 0.009, 0.011, 0.010]     # better on every seed, by about as much
    for gains in (noisy, steady):                    # the hand-computed paired t-interval
        half = stats.t.ppf(0.975, 4) * np.std(gains, ddof=1) / np.sqrt(5)
        expected = 10 if np.mean(gains) - half <= 0 else 20
        _fake_evidence(monkeypatch, table(gains))
        assert tuning.select(tuning.Evidence("x", "epochs", rule="cheapest")) == expected
    _fake_evidence(monkeypatch, table(noisy))
    assert tuning.select(tuning.Evidence("x", "epochs", rule="cheapest")) == 10
    _fake_evidence(monkeypatch, table(steady))
    assert tuning.select(tuning.Evidence("x", "epochs", rule="cheapest")) == 20


def test_margins_of_normalised_cosine_are_those_of_unnormalised_cosine_and_others_must_be_given():
    assert tuning.default_margin("triplet", "cosine", True) == tuning.DEFAULT_MARGIN[
        ("triplet", "cosine", False)]
    with pytest.raises(ValueError, match="margin must be given for loss='triplet', metric='manhattan', "
                                         "normalize=True"):
        tuning.default_margin("triplet", "manhattan", True)


def _unseen_table(gains):
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


def test_unseen_winner_needs_every_paired_run_of_both_losses():
    everywhere = {"contrastive": [0.01] * 4, "triplet": [0.02] * 4}
    bigger = {"contrastive": [0.05] * 4, "triplet": [0.05] * 4}
    one_pair_lost = {"contrastive": [0.2, 0.2, 0.2, -0.01], "triplet": [0.2] * 4}
    one_loss_only = {"contrastive": [0.1] * 4, "triplet": [-0.1] * 4}
    assert tuning.unseen_winner(_unseen_table({"a": everywhere})) == "a"
    assert tuning.unseen_winner(_unseen_table({"a": everywhere, "b": bigger})) == "b"
    assert tuning.unseen_winner(_unseen_table({"c": one_pair_lost, "d": one_loss_only})) == "defaults"
    with pytest.raises(ValueError, match="table must hold the 'defaults' runs of 'contrastive'"):
        table = _unseen_table({"a": everywhere})
        tuning.unseen_winner(table[table["candidate"] != "defaults"])


def test_every_unseen_candidate_was_run_for_both_losses():
    table = tuning.evidence("unseen")
    for loss in experiments.LOSSES:
        assert set(table[table["method"] == loss]["candidate"]) == set(tuning.UNSEEN_CANDIDATES)


def test_the_default_run_scores_the_same_in_every_table_that_holds_it():
    """Stale rows show up here: every table's default configuration is one and the same run."""
    def default_rows(part, **where):
        table = tuning.evidence(part)
        for key, value in where.items():
            table = table[table[key] == value]
        return table.set_index(["loss", "seed"])["val_map_at_r"].sort_index()

    for loss in experiments.LOSSES:
        metric = experiments.DEFAULT_METRIC[loss]
        tables = {
            "margins": default_rows("margins", loss=loss, metric=metric, normalize=False,
                                    margin=tuning.DEFAULT_MARGIN[(loss, metric, False)]),
            "lr": default_rows("lr", loss=loss, lr=tuning.LR),
            "epochs": default_rows("epochs", loss=loss, epochs=tuning.EPOCHS),
            "embedding_dim": default_rows("embedding_dim", loss=loss, embedding_dim=tuning.EMBEDDING_DIM),
        }
        if loss == "contrastive":
            tables["balance"] = default_rows("balance", loss=loss, balance=tuning.BALANCE)
        reference = tables.pop("margins")
        assert len(reference) == 3
        for part, rows in tables.items():
            assert rows.to_numpy() == pytest.approx(reference.to_numpy(), abs=2e-6), (loss, part)


def test_unseen_settings_turn_a_margin_scale_into_the_losss_own_margin():
    double = tuning.UNSEEN_CANDIDATES["double margin"]
    assert tuning.unseen_settings("contrastive", double) == {
        "margin": 2 * tuning.DEFAULT_MARGIN[("contrastive", "euclidean", False)]}
    assert tuning.unseen_settings("triplet", {"margin_scale": 0.5, "metric": "euclidean"}) == {
        "metric": "euclidean", "margin": 0.5 * tuning.DEFAULT_MARGIN[("triplet", "euclidean", False)]}
    assert tuning.unseen_settings("triplet") == tuning.UNSEEN  # no scale: the settings as they are
    for candidate in tuning.UNSEEN_CANDIDATES.values():  # each one is something run accepts
        for loss in experiments.LOSSES:
            experiments.configure(loss, **tuning.unseen_settings(loss, candidate))

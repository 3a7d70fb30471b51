"""evaluation: small hand-made cases with hand-computed values, and a reference implementation."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from siamese_lib import evaluation as ev

# Case 1, points on a line:  0(A) 1(A) 3(B) 10(B) 11(B)
#   query 0: nn 1(A)            -> P@1 1, R=1, R-prec 1, AP 1
#   query 1: nn 0(A)            -> 1, 1, 1
#   query 3: nn 1(A), 0(A)      -> 0, R=2, R-prec 0, AP 0
#   query 10: nn 11(B), 3(B)    -> 1, R=2, 1, 1
#   query 11: nn 10(B), 3(B)    -> 1, R=2, 1, 1
LINE = torch.tensor([[0.0], [1.0], [3.0], [10.0], [11.0]])
LINE_LABELS = torch.tensor([0, 0, 1, 1, 1])

# Case 2:  0(A) 2(B) 3(A) 5(A)   (B has no other member: it is left out of R-prec and MAP@R)
#   query 0: ranked B, A, A     -> P@1 0, R=2, R-prec 1/2, AP (0 + 1/2)/2 = 1/4
#   query 2: nn 3(A)            -> P@1 0
#   query 3: ranked B, A, A     -> 0, 1/2, 1/4
#   query 5: ranked A, B, A     -> 1, 1/2, (1/1)/2 = 1/2
#   5-NN impossible (3 neighbours); 3-NN votes: q0 B,A,A->A ok; q2 A,A,A->A wrong; q3 ok; q5 ok
GAP = torch.tensor([[0.0], [2.0], [3.0], [5.0]])
GAP_LABELS = torch.tensor([0, 1, 0, 0])


def test_hand_computed_line():
    assert ev.precision_at_1(LINE, LINE_LABELS) == pytest.approx(0.8)
    assert ev.r_precision(LINE, LINE_LABELS) == pytest.approx(0.8)
    assert ev.map_at_r(LINE, LINE_LABELS) == pytest.approx(0.8)


def test_hand_computed_gap():
    assert ev.precision_at_1(GAP, GAP_LABELS) == pytest.approx(0.25)
    assert ev.r_precision(GAP, GAP_LABELS) == pytest.approx(0.5)
    assert ev.map_at_r(GAP, GAP_LABELS) == pytest.approx(1 / 3)
    assert ev.knn_accuracy(GAP, GAP_LABELS, k=3) == pytest.approx(0.75)


def test_knn_tie_goes_to_the_closest_class():
    # points 0(B) 1(B) 2(A) 3(A) 4(B) with A = 0 < B = 1, k = 4 (every other point votes).
    #   q0 (B): 1(B) 2(A) 3(A) 4(B): 2-2 tie, B holds the closest neighbour -> B, right
    #   q1 (B): 0(B) 2(A) (distance tie, index order) 3(A) 4(B): 2-2, B closest -> B, right
    #   q2 (A): 1(B) 3(A) 0(B) 4(B): 3 votes for B -> wrong;  q3 (A): 2(A) 4(B) 1(B) 0(B) -> B, wrong
    #   q4 (B): 3(A) 2(A) 1(B) 0(B): 2-2, A closest -> A, wrong
    # Breaking ties by the lower label (or by rank-weighted votes, which tie exactly here) gives 0/5.
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    labels = torch.tensor([1, 1, 0, 0, 1])
    assert ev.knn_accuracy(x, labels, k=4) == pytest.approx(2 / 5)


def test_perfect_and_metric_choice():
    x = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert ev.precision_at_1(x, labels, "cosine") == 1.0
    assert ev.map_at_r(x, labels, "cosine") == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_against_pytorch_metric_learning(seed):
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (120,), generator=g)
    x = torch.randn(120, 6, generator=g) + labels[:, None] * 0.7  # some structure
    calc = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
                              knn_func=CustomKNN(LpDistance(normalize_embeddings=False)),
                              device=torch.device("cpu"))
    ref = calc.get_accuracy(x, labels, x, labels, ref_includes_query=True)
    assert ev.precision_at_1(x, labels) == pytest.approx(ref["precision_at_1"], abs=1e-6)
    assert ev.r_precision(x, labels) == pytest.approx(ref["r_precision"], abs=1e-6)
    assert ev.map_at_r(x, labels) == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-6)


def test_verification_hand_computed():
    # distances of 3 positive and 3 negative pairs
    d = np.array([0.1, 0.4, 0.9, 0.5, 1.2, 2.0])
    y = np.array([1, 1, 1, 0, 0, 0])
    # AUC: pairs (pos, neg) where pos closer: 0.1,0.4 beat all 3; 0.9 beats 1.2, 2.0 -> 8/9
    assert ev.roc_auc(d, y) == pytest.approx(8 / 9)
    t = ev.best_threshold(d, y)
    assert 0.4 < t < 0.5  # accepts 0.1, 0.4: 5/6 correct, the best possible
    assert ev.verification_accuracy(d, y, t) == pytest.approx(5 / 6)
    assert ev.verification_accuracy(d, y, 0.3) == pytest.approx(4 / 6)  # 0.4 and 0.9 rejected
    # EER: fpr = fnr. With t between 0.5 and 0.9: fpr 1/3, fnr 1/3
    assert ev.equal_error_rate(d, y) == pytest.approx(1 / 3)


def test_verification_perfect_separation():
    d, y = np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0])
    assert ev.roc_auc(d, y) == 1.0
    assert ev.equal_error_rate(d, y) == 0.0
    assert ev.verification_accuracy(d, y, ev.best_threshold(d, y)) == 1.0


def _correct_by_hand(d, y, t):
    """How many pairs "same if d <= t" gets right, one pair at a time."""
    return sum(1 for di, yi in zip(d.tolist(), y.tolist()) if (di <= t) == (yi == 1))


def test_best_threshold_does_not_split_tied_distances():
    d, y = np.array([0.0, 0.0, 1.0]), np.array([1, 0, 1])
    t = ev.best_threshold(d, y)
    assert _correct_by_hand(d, y, t) == 2  # t >= 1: both positives accepted; t = 0 would give 1


@pytest.mark.parametrize("seed", range(20))
def test_best_threshold_beats_every_threshold_on_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 60))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]  # both labels
    d = np.round(rng.normal(1.0 - 0.4 * y, 0.5), 1)  # rounded: many ties
    if seed % 4 == 0:
        d = np.abs(d)  # distances piled up at 0
    values = sorted(set(d.tolist()))
    candidates = [values[0] - 1, values[-1] + 1, *values,
                  *[(a + b) / 2 for a, b in zip(values[:-1], values[1:])]]
    best = max(_correct_by_hand(d, y, t) for t in candidates)
    t = ev.best_threshold(d, y)
    assert _correct_by_hand(d, y, t) == best, (t, d, y)


def test_best_threshold_extremes():
    # accepting every pair / no pair is best: the threshold lies beyond the data, even where
    # d ± 1e-6 rounds back to d
    d, y = np.array([1e12, 1e12, 2e12]), np.array([0, 1, 1])
    t = ev.best_threshold(d, y)
    assert t > 2e12 and _correct_by_hand(d, y, t) == 2
    d, y = np.array([5.0, 5.0, 7.0]), np.array([1, 1, 0])
    assert ev.best_threshold(d, y) == 6.0
    d, y = np.array([1e12, 2e12, 2e12]), np.array([0, 0, 1])
    t = ev.best_threshold(d, y)
    assert t < 1e12 and _correct_by_hand(d, y, t) == 2


def test_importing_evaluation_does_not_load_sklearn():
    code = "import sys, siamese_lib.evaluation; assert 'sklearn' not in sys.modules, 'sklearn loaded'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_eer_matches_brute_force_threshold_sweep():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    d = rng.normal(1.0 - 0.6 * y, 0.4)
    thresholds = np.sort(d)
    far = np.array([((d <= t) & (y == 0)).sum() / (y == 0).sum() for t in thresholds])
    frr = np.array([((d > t) & (y == 1)).sum() / (y == 1).sum() for t in thresholds])
    i = np.argmin(np.abs(far - frr))
    assert ev.equal_error_rate(d, y) == pytest.approx((far[i] + frr[i]) / 2, abs=0.01)


def test_bad_input():
    with pytest.raises(ValueError, match="both 0"):
        ev.roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="equal length"):
        ev.roc_auc([0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="finite"):
        ev.roc_auc([np.nan, 0.2], [1, 0])
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        ev.precision_at_1(LINE, LINE_LABELS[:3])
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        ev.knn_accuracy(LINE, LINE_LABELS, k=0)
    with pytest.raises(ValueError, match="at least 2 items per label"):
        ev.precision_at_1(LINE[:2], torch.tensor([0, 1]))


def test_a_constant_embedding_scores_chance_even_on_data_sorted_by_label():
    """Ties are not broken by index: sorted labels would give a collapsed embedding a high score."""
    labels = torch.arange(10).repeat_interleave(60)  # sorted by label, as the splits are
    constant = torch.zeros(len(labels), 4)
    chance_p1 = 59 / 599
    scores = ev.retrieval_metrics(constant, labels)
    sigma = (chance_p1 * (1 - chance_p1) / len(labels)) ** 0.5
    assert abs(scores["precision_at_1"] - chance_p1) < 4 * sigma, scores
    assert scores["map_at_r"] < 0.03 and scores["r_precision"] < 0.13, scores
    # a random embedding (no ties) is scored the same way
    noise = ev.retrieval_metrics(torch.randn(len(labels), 4, generator=torch.Generator().manual_seed(0)),
                                         labels)
    assert abs(noise["map_at_r"] - scores["map_at_r"]) < 0.01, (noise, scores)


def _few_shot_by_hand(z, labels, n_way, k_shot, n_query, episodes, seed):
    """One episode at a time with plain Python: draw, average the support, pick the nearest prototype."""
    rng = np.random.default_rng(seed)
    members = {c: np.flatnonzero(labels == c) for c in np.unique(labels)
               if (labels == c).sum() >= k_shot + n_query}
    scores = []
    for _ in range(episodes):
        classes = rng.choice(sorted(members), size=n_way, replace=False)
        right = 0
        draws = [rng.choice(members[c], size=k_shot + n_query, replace=False) for c in classes]
        prototypes = [z[d[:k_shot]].mean(axis=0) for d in draws]
        for truth, d in enumerate(draws):
            for q in d[k_shot:]:
                dists = [np.sqrt(((z[q] - p) ** 2).sum()) for p in prototypes]
                right += int(np.argmin(dists) == truth)
        scores.append(right / (n_way * n_query))
    return float(np.mean(scores)), float(np.std(scores, ddof=1))


@pytest.mark.parametrize("k_shot", [1, 5])
def test_few_shot_accuracy_agrees_with_a_hand_loop(k_shot):
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(8).repeat_interleave(30)
    z = torch.randn(len(labels), 6, generator=g, dtype=torch.float64) + 0.8 * torch.nn.functional.one_hot(
        labels % 6, 6).double()
    acc, half = ev.few_shot_accuracy(z, labels, n_way=5, k_shot=k_shot, n_query=10, episodes=2000)
    ref, ref_std = _few_shot_by_hand(z.numpy(), labels.numpy(), 5, k_shot, 10, 2000, seed=1)
    assert abs(half - 1.96 * ref_std / 2000**0.5) < 0.3 * half  # same spread of episodes
    assert abs(acc - ref) < 3 * (half / 1.96) * 2**0.5, (acc, ref)  # two estimates of one mean
    assert 0.2 + 4 * half < acc < 1 - 4 * half  # a case between chance and perfect


def test_few_shot_accuracy_known_answers():
    labels = torch.arange(6).repeat_interleave(20)
    separated = 100.0 * torch.nn.functional.one_hot(labels, 6).double()
    assert ev.few_shot_accuracy(separated, labels, episodes=50) == (1.0, 0.0)
    constant = torch.zeros(len(labels), 3)
    acc, _ = ev.few_shot_accuracy(constant, labels, n_way=4, episodes=50)
    assert acc == pytest.approx(1 / 4)  # chance
    # class 0 at 0 and 2, class 1 twice at 3: the query of class 0 is right only when 2 is the
    # support, the query of class 1 always; expected accuracy (1/2 + 1) / 2 = 0.75
    z, y = torch.tensor([[0.0], [2.0], [3.0], [3.0]]), torch.tensor([0, 0, 1, 1])
    acc, half = ev.few_shot_accuracy(z, y, n_way=2, k_shot=1, n_query=1, episodes=4000)
    assert abs(acc - 0.75) < 2 * half


def test_few_shot_accuracy_bad_input():
    z, labels = torch.randn(40, 3), torch.arange(40) % 4
    with pytest.raises(ValueError, match="n_way=5 needs"):
        ev.few_shot_accuracy(z, labels, n_way=5, n_query=2)
    with pytest.raises(ValueError, match="k_shot"):
        ev.few_shot_accuracy(z, labels, k_shot=0)
    with pytest.raises(ValueError, match="n_way"):
        ev.few_shot_accuracy(z, labels, n_way=1)

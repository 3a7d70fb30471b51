"""mining: every vectorised selector against a brute-force loop over the batch."""

import itertools

import pytest
import torch

from siamese_lib import mining
from siamese_lib.distances import distance_matrix


def random_batch(seed, n=14, classes=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=g)
    return distance_matrix(x), labels


@pytest.mark.parametrize("seed", range(10))
def test_masks_match_loops(seed):
    dist, labels = random_batch(seed)
    n, lab = len(labels), labels.tolist()
    pos, neg = mining.pair_masks(labels)
    for i, j in itertools.product(range(n), range(n)):
        assert pos[i, j] == (i != j and lab[i] == lab[j])
        assert neg[i, j] == (lab[i] != lab[j])
    cube = mining.triplet_mask(labels)
    expected = {(a, p, q) for a, p, q in itertools.product(range(n), repeat=3)
                if a != p and lab[a] == lab[p] and lab[a] != lab[q]}
    assert set(map(tuple, torch.nonzero(cube).tolist())) == expected
    anchor, positive = mining.positive_pairs(labels)
    assert set(zip(anchor.tolist(), positive.tolist())) == {
        (a, p) for a, p in itertools.permutations(range(n), 2) if lab[a] == lab[p]}


@pytest.mark.parametrize("seed", range(10))
def test_batch_hard_matches_loop(seed):
    dist, labels = random_batch(seed)
    lab, d = labels.tolist(), dist.tolist()
    expected = []
    for a in range(len(lab)):
        pos = [p for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        neg = [q for q in range(len(lab)) if lab[q] != lab[a]]
        if pos and neg:
            expected.append((a, max(pos, key=lambda p: d[a][p]), min(neg, key=lambda q: d[a][q])))
    got = list(zip(*(t.tolist() for t in mining.batch_hard(dist, labels))))
    assert got == expected


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_semi_hard_matches_loop(seed, margin):
    dist, labels = random_batch(seed)
    lab, d = labels.tolist(), dist.tolist()
    expected = set()
    for a, p in itertools.permutations(range(len(lab)), 2):
        if lab[a] != lab[p]:
            continue
        semi = [q for q in range(len(lab)) if lab[q] != lab[a] and d[a][p] < d[a][q] < d[a][p] + margin]
        if semi:
            expected.add((a, p, min(semi, key=lambda q: d[a][q])))
    got = set(zip(*(t.tolist() for t in mining.semi_hard(dist, labels, margin))))
    assert got == expected


@pytest.mark.parametrize("seed", range(5))
def test_batch_hard_pairs_match_loop(seed):
    dist, labels = random_batch(seed)
    lab, d = labels.tolist(), dist.tolist()
    expected_pos, expected_neg = set(), set()
    for a in range(len(lab)):
        pos = [p for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        neg = [q for q in range(len(lab)) if lab[q] != lab[a]]
        if pos and neg:
            expected_pos.add(frozenset((a, max(pos, key=lambda p: d[a][p]))))
            expected_neg.add(frozenset((a, min(neg, key=lambda q: d[a][q]))))
    pos, neg = mining.batch_hard_pairs(dist, labels)
    assert torch.equal(pos, pos.T) and torch.equal(neg, neg.T)
    assert {frozenset(p) for p in torch.nonzero(pos).tolist()} == expected_pos
    assert {frozenset(p) for p in torch.nonzero(neg).tolist()} == expected_neg


def test_anchors_without_positive_or_negative_are_dropped():
    dist, _ = random_batch(0, n=4)
    anchor, _, _ = mining.batch_hard(dist, torch.tensor([0, 1, 1, 2]))
    assert anchor.tolist() == [1, 2]
    empty = mining.batch_hard(dist, torch.zeros(4, dtype=torch.long))
    assert all(len(t) == 0 for t in empty)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        mining.batch_hard(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        mining.batch_hard(torch.zeros(3, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="margin must be a number > 0"):
        mining.semi_hard(torch.zeros(3, 3), torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        mining.batch_hard(torch.zeros(0, 0), torch.zeros(0))

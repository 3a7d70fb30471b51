"""online_losses: brute-force loops over every pair and triplet of a batch, reductions, PML."""

import itertools
import math

import pytest
import torch
from test_losses import DTYPES, METRICS, dist, fixed_points, metric_of

from siamese_lib import online_losses, tuning

# ---- online losses against brute-force loops -------------------------------------------

def loop_batch_all(x, labels, margin, squared):
    values = []
    for a, p, n in itertools.permutations(range(len(x)), 3):
        if labels[a] == labels[p] and labels[a] != labels[n]:
            values.append(max(dist(x[a], x[p], squared) - dist(x[a], x[n], squared) + margin, 0))
    return values


def loop_batch_hard(x, labels, margin, squared):
    values = []
    for a in range(len(x)):
        pos = [dist(x[a], x[p], squared) for p in range(len(x)) if p != a and labels[p] == labels[a]]
        neg = [dist(x[a], x[n], squared) for n in range(len(x)) if labels[n] != labels[a]]
        if pos and neg:
            values.append(max(max(pos) - min(neg) + margin, 0))
    return values


def loop_semi_hard(x, labels, margin, squared):
    values = []
    for a, p in itertools.permutations(range(len(x)), 2):
        if labels[a] != labels[p]:
            continue
        d_ap = dist(x[a], x[p], squared)
        semi = [dist(x[a], x[n], squared) for n in range(len(x))
                if labels[n] != labels[a] and d_ap < dist(x[a], x[n], squared) < d_ap + margin]
        if semi:
            values.append(d_ap - min(semi) + margin)
    return values


def loop_online_contrastive(x, labels, margin):
    values = []
    for i, j in itertools.combinations(range(len(x)), 2):
        d = dist(x[i], x[j])
        values.append(d**2 if labels[i] == labels[j] else max(margin - d, 0) ** 2)
    return values


def reduce(values, reduction):
    """The four reductions, by hand."""
    if reduction == "sum":
        return sum(values)
    if reduction == "mean_nonzero":
        values = [v for v in values if v > 0]
    return sum(values) / len(values) if values else 0.0


REDUCTIONS = ("mean", "mean_nonzero", "sum")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("margin", [0.3, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_online_triplet_losses_match_loops(dtype, squared, margin, reduction):
    x, labels = fixed_points(dtype)
    pts, lab = x.tolist(), labels.tolist()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    metric = metric_of(squared)
    for fn, loop in ((online_losses.batch_all_triplet_loss, loop_batch_all),
                     (online_losses.batch_hard_triplet_loss, loop_batch_hard),
                     (online_losses.semi_hard_triplet_loss, loop_semi_hard)):
        expected = loop(pts, lab, margin, squared)
        got = fn(x, labels, margin, metric, reduction=reduction)
        assert got.item() == pytest.approx(reduce(expected, reduction), abs=tol), fn.__name__
        every = fn(x, labels, margin, metric, reduction="none")
        assert sorted(every.tolist()) == pytest.approx(sorted(expected), abs=tol), fn.__name__
    values = loop_batch_all(pts, lab, margin, squared)
    assert online_losses.active_fraction(x, labels, margin, metric) == pytest.approx(
        sum(v > 0 for v in values) / len(values))


def test_batch_all_default_is_the_mean_over_active_triplets():
    """Hermans et al.'s BA≠0: the default of the function and of the module."""
    x, labels = fixed_points(torch.float64)
    values = loop_batch_all(x.tolist(), labels.tolist(), 1.0, True)
    expected = reduce(values, "mean_nonzero")
    assert expected != pytest.approx(reduce(values, "mean"))  # the two averages differ here
    assert online_losses.batch_all_triplet_loss(x, labels, 1.0).item() == pytest.approx(expected)
    assert online_losses.OnlineTripletLoss("batch_all", 1.0)(x, labels).item() == pytest.approx(expected)
    assert online_losses.OnlineTripletLoss("batch_hard", 1.0)(x, labels).item() == pytest.approx(
        reduce(loop_batch_hard(x.tolist(), labels.tolist(), 1.0, True), "mean"))


def _random_batch(seed):
    """12 random float64 points in 3-D with labels 0-2, as tensors and as lists for the loops."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (12,), generator=g)
    return x, labels, x.tolist(), labels.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_online_losses_match_loops_on_random_batches(seed):
    x, labels, pts, lab = _random_batch(seed)
    assert online_losses.batch_all_triplet_loss(x, labels, 1.0).item() == pytest.approx(
        reduce(loop_batch_all(pts, lab, 1.0, True), "mean_nonzero"), abs=1e-10)
    assert online_losses.batch_hard_triplet_loss(x, labels, 1.0).item() == pytest.approx(
        reduce(loop_batch_hard(pts, lab, 1.0, True), "mean"), abs=1e-10)
    assert online_losses.semi_hard_triplet_loss(x, labels, 2.0).item() == pytest.approx(
        reduce(loop_semi_hard(pts, lab, 2.0, True), "mean"), abs=1e-10)
    for reduction in REDUCTIONS:
        assert online_losses.online_contrastive_loss(x, labels, 1.5, reduction=reduction).item() == \
            pytest.approx(reduce(loop_online_contrastive(pts, lab, 1.5), reduction), abs=1e-10)


def test_online_contrastive_hard_pairs():
    x, labels = fixed_points(torch.float64)
    pts, lab = x.tolist(), labels.tolist()
    chosen = set()
    for a in range(len(pts)):
        pos = [p for p in range(len(pts)) if p != a and lab[p] == lab[a]]
        neg = [n for n in range(len(pts)) if lab[n] != lab[a]]
        chosen.add(tuple(sorted((a, max(pos, key=lambda p: dist(pts[a], pts[p]))))))
        chosen.add(tuple(sorted((a, min(neg, key=lambda n: dist(pts[a], pts[n]))))))
    values = [dist(pts[i], pts[j]) ** 2 if lab[i] == lab[j] else max(1 - dist(pts[i], pts[j]), 0) ** 2
              for i, j in chosen]
    loss = online_losses.online_contrastive_loss(x, labels, 1.0, mining="batch_hard")
    assert loss.item() == pytest.approx(sum(values) / len(values), abs=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_balanced_online_contrastive_against_a_loop(seed):
    x, labels, pts, lab = _random_batch(seed)
    positives, negatives = [], []
    for i, j in itertools.combinations(range(len(pts)), 2):
        d = dist(pts[i], pts[j])
        (positives if lab[i] == lab[j] else negatives).append(
            d ** 2 if lab[i] == lab[j] else max(1.5 - d, 0) ** 2)
    expected = (sum(positives) / len(positives) + sum(negatives) / len(negatives)) / 2
    loss = online_losses.OnlineContrastiveLoss(1.5, balance=True)(x, labels)
    assert loss.item() == pytest.approx(expected, abs=1e-10)
    all_pairs = online_losses.online_contrastive_loss(x, labels, 1.5)
    every_pair = positives + negatives
    assert all_pairs.item() == pytest.approx(sum(every_pair) / len(every_pair), abs=1e-10)
    with pytest.raises(ValueError, match="balance=True .* needs reduction='mean', got reduction='sum'"):
        online_losses.online_contrastive_loss(x, labels, 1.5, reduction="sum", balance=True)


def test_batch_hard_matches_pytorch_metric_learning():
    import pytorch_metric_learning as pml
    from pytorch_metric_learning import distances as pml_d
    from pytorch_metric_learning import losses as pml_l
    from pytorch_metric_learning import miners, reducers

    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 8, generator=g)
    labels = torch.randint(0, 4, (32,), generator=g)
    for squared, power in ((True, 2), (False, 1)):
        distance = pml_d.LpDistance(normalize_embeddings=False, p=2, power=power)
        miner = miners.BatchHardMiner(distance=distance)
        loss_fn = pml_l.TripletMarginLoss(margin=0.5, distance=distance, reducer=reducers.MeanReducer())
        theirs = loss_fn(x, labels, miner(x, labels))
        ours = online_losses.batch_hard_triplet_loss(x, labels, 0.5, metric_of(squared))
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-4, abs=1e-5), pml.__version__


# ---- default margins: the validated ones, not 1 ---------------------------------------

@pytest.mark.parametrize("metric", METRICS)
def test_default_margins_are_the_validated_ones(metric):
    contrastive = tuning.DEFAULT_MARGIN[("contrastive", metric, False)]
    for mining in ("batch_all", "batch_hard"):
        assert online_losses.OnlineContrastiveLoss(metric=metric, mining=mining).margin == contrastive
    x, labels = torch.ones(4, 2, dtype=torch.float64), torch.tensor([0, 0, 1, 1])
    assert online_losses.online_contrastive_loss(x, torch.tensor([0, 1, 2, 3]), metric=metric).item() == \
        pytest.approx(contrastive**2)
    triplet = tuning.DEFAULT_MARGIN.get(("triplet", metric, False))
    if triplet is None:  # no validated margin: the triplet losses ask for one
        with pytest.raises(ValueError, match="margin must be given for loss='triplet'"):
            online_losses.OnlineTripletLoss("batch_all", metric=metric)
        return
    for mining in ("batch_all", "batch_hard", "semi_hard"):
        assert online_losses.OnlineTripletLoss(mining, metric=metric).margin == triplet
    assert online_losses.OnlineTripletLoss("batch_hard", metric=metric, soft=True).margin == triplet
    # identical (non-zero) points of two classes: every distance is 0 and every term m
    for fn in (online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss):
        assert fn(x, labels, metric=metric).item() == pytest.approx(triplet), fn.__name__
    assert online_losses.OnlineTripletLoss("batch_hard", metric=metric)(x, labels).item() == \
        pytest.approx(triplet)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean"])
def test_default_margin_decides_semi_hard_negatives_and_active_triplets(metric):
    m = tuning.DEFAULT_MARGIN[("triplet", metric, False)]
    # on a line: anchor and positive at 0, the negative at distance m / 2 in units of ``metric``
    gap = math.sqrt(m / 2) if metric == "sqeuclidean" else m / 2
    x, labels = torch.tensor([[0.0], [0.0], [gap]], dtype=torch.float64), torch.tensor([0, 0, 1])
    assert online_losses.semi_hard_triplet_loss(x, labels, metric=metric).item() == pytest.approx(m / 2)
    assert online_losses.active_fraction(x, labels, metric=metric) == 1.0
    # a margin smaller than the gap: no semi-hard negative, no active triplet
    assert online_losses.semi_hard_triplet_loss(x, labels, m / 4, metric).item() == 0.0
    assert online_losses.active_fraction(x, labels, m / 4, metric) == 0.0


def test_an_explicit_margin_wins():
    x, labels = torch.ones(4, 2, dtype=torch.float64), torch.tensor([0, 0, 1, 1])
    loss = online_losses.OnlineTripletLoss("batch_hard", 0.5, "euclidean", False)  # positional order
    assert loss.margin == 0.5 and loss.metric == "euclidean" and loss(x, labels).item() == 0.5
    assert online_losses.OnlineContrastiveLoss(0.5, "manhattan").margin == 0.5
    assert online_losses.batch_all_triplet_loss(x, labels, 0.5).item() == 0.5
    assert online_losses.online_contrastive_loss(x, labels, 0.5, reduction="sum").item() == 4 * 0.25


def test_a_margin_never_validated_must_be_given(monkeypatch):
    monkeypatch.delitem(tuning.DEFAULT_MARGIN, ("triplet", "cosine", False))
    monkeypatch.delitem(tuning.DEFAULT_MARGIN, ("contrastive", "cosine", False))
    x, labels = torch.ones(4, 2), torch.tensor([0, 0, 1, 1])
    for make in (lambda: online_losses.OnlineTripletLoss(metric="cosine"),
                 lambda: online_losses.OnlineTripletLoss("batch_hard", metric="cosine", soft=True),
                 lambda: online_losses.OnlineContrastiveLoss(metric="cosine"),
                 lambda: online_losses.semi_hard_triplet_loss(x, labels, metric="cosine"),
                 lambda: online_losses.online_contrastive_loss(x, labels, metric="cosine"),
                 lambda: online_losses.active_fraction(x, labels, metric="cosine")):
        with pytest.raises(ValueError, match="margin must be given for loss="):
            make()
    # the soft-margin functions do not use a margin, so they need none
    for fn in (online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss):
        assert fn(x, labels, metric="cosine", soft=True).item() == pytest.approx(math.log(2))


# ---- no valid pair or triplet: zero loss that still back-propagates -------------------

@pytest.mark.parametrize("labels", [torch.zeros(5, dtype=torch.long), torch.arange(5)])
def test_no_valid_triplet_gives_zero_with_gradient(labels):
    x = torch.randn(5, 3, requires_grad=True)
    for loss in (online_losses.batch_all_triplet_loss(x, labels),
                 online_losses.batch_hard_triplet_loss(x, labels),
                 online_losses.semi_hard_triplet_loss(x, labels)):
        assert loss.item() == 0.0
        x.grad = None
        loss.backward()
        assert torch.equal(x.grad, torch.zeros_like(x))


def test_online_contrastive_single_item_batch():
    x = torch.randn(1, 3, requires_grad=True)
    loss = online_losses.online_contrastive_loss(x, torch.tensor([0]))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()


def test_online_losses_backward_finite_with_duplicates():
    x = torch.randn(4, 3).repeat(2, 1).requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    for fn in (online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss,
               online_losses.semi_hard_triplet_loss, online_losses.online_contrastive_loss):
        x.grad = None
        fn(x, labels).backward()
        assert torch.isfinite(x.grad).all(), fn.__name__



"""losses: hand-written loops over explicit pairs and triplets, gradients, properties, bad input."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from siamese_lib import losses

DTYPES = [torch.float32, torch.float64]


def dist(u, v, squared=False):
    s = sum((a - b) ** 2 for a, b in zip(u, v))
    return s if squared else math.sqrt(s)


def fixed_points(dtype):
    """Eight 2-D points of three classes, with a few near-duplicates."""
    x = torch.tensor([[0.0, 0.0], [0.3, 0.1], [2.0, 0.0], [2.1, 0.4], [0.0, 1.5],
                      [0.2, 1.4], [1.0, 1.0], [0.05, 0.02]], dtype=dtype)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 1, 2])
    return x, labels


def loop_contrastive(x1, x2, y, margin):
    out = []
    for u, v, same in zip(x1.tolist(), x2.tolist(), y.tolist()):
        d = dist(u, v)
        out.append(d**2 if same == 1 else max(margin - d, 0) ** 2)
    return out


def loop_triplet(a, p, n, margin, squared):
    return [max(dist(ai, pi, squared) - dist(ai, ni, squared) + margin, 0)
            for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
def test_contrastive_matches_loop(dtype, margin):
    x, _ = fixed_points(dtype)
    x1, x2 = x[:4], x[4:]
    y = torch.tensor([1, 0, 0, 1])
    expected = loop_contrastive(x1, x2, y, margin)
    per_pair = losses.contrastive_loss(x1, x2, y, margin, reduction="none")
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert per_pair.tolist() == pytest.approx(expected, abs=tol)
    assert losses.contrastive_loss(x1, x2, y, margin).item() == pytest.approx(np.mean(expected), abs=tol)
    assert losses.contrastive_loss(x1, x2, y, margin, reduction="sum").item() == pytest.approx(
        sum(expected), abs=tol)
    module = losses.ContrastiveLoss(margin)
    assert module(x1, x2, y).item() == pytest.approx(np.mean(expected), abs=tol)


def test_contrastive_other_metrics_and_label_types():
    x1, x2 = torch.randn(6, 3), torch.randn(6, 3)
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    for metric in ("manhattan", "cosine", "sqeuclidean"):
        from siamese_lib.distances import paired_distance

        d = paired_distance(x1, x2, metric)
        expected = torch.where(y == 1, d**2, F.relu(1.0 - d) ** 2).mean()
        torch.testing.assert_close(losses.contrastive_loss(x1, x2, y, metric=metric), expected)
    as_bool = losses.contrastive_loss(x1, x2, y.bool())
    as_float = losses.contrastive_loss(x1, x2, y.float())
    torch.testing.assert_close(as_bool, as_float)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [True, False])
def test_triplet_matches_loop(dtype, squared):
    x, _ = fixed_points(dtype)
    a, p, n = x[[0, 2, 4]], x[[1, 3, 5]], x[[6, 7, 2]]
    expected = loop_triplet(a, p, n, 1.0, squared)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert losses.triplet_loss(a, p, n, squared=squared, reduction="none").tolist() == pytest.approx(
        expected, abs=tol)
    assert losses.TripletLoss(squared=squared)(a, p, n).item() == pytest.approx(np.mean(expected), abs=tol)


def test_triplet_agrees_with_torch():
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(16, 8, generator=g) for _ in range(3))
    for margin in (0.2, 1.0, 2.5):
        ours = losses.triplet_loss(a, p, n, margin, squared=False)
        theirs = F.triplet_margin_loss(a, p, n, margin=margin)
        assert ours.item() == pytest.approx(theirs.item(), abs=1e-4)
        assert ours.item() == pytest.approx(torch.nn.TripletMarginLoss(margin)(a, p, n).item(), abs=1e-4)


def test_soft_triplet():
    a, p, n = torch.randn(3, 5, 4).unbind(0)
    expected = F.softplus(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1)).mean()
    torch.testing.assert_close(losses.triplet_loss(a, p, n, soft=True), expected)


# ---- online losses against brute-force loops -------------------------------------------

def loop_batch_all(x, labels, margin, squared):
    values = []
    for a, p, n in itertools.permutations(range(len(x)), 3):
        if labels[a] == labels[p] and labels[a] != labels[n]:
            values.append(max(dist(x[a], x[p], squared) - dist(x[a], x[n], squared) + margin, 0))
    active = [v for v in values if v > 0]
    return (sum(active) / len(active) if active else 0.0), len(active) / len(values)


def loop_batch_hard(x, labels, margin, squared):
    values = []
    for a in range(len(x)):
        pos = [dist(x[a], x[p], squared) for p in range(len(x)) if p != a and labels[p] == labels[a]]
        neg = [dist(x[a], x[n], squared) for n in range(len(x)) if labels[n] != labels[a]]
        if pos and neg:
            values.append(max(max(pos) - min(neg) + margin, 0))
    return sum(values) / len(values) if values else 0.0


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
    return sum(values) / len(values) if values else 0.0


def loop_online_contrastive(x, labels, margin):
    values = []
    for i, j in itertools.combinations(range(len(x)), 2):
        d = dist(x[i], x[j])
        values.append(d**2 if labels[i] == labels[j] else max(margin - d, 0) ** 2)
    return sum(values) / len(values)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("margin", [0.3, 1.0])
def test_online_triplet_losses_match_loops(dtype, squared, margin):
    x, labels = fixed_points(dtype)
    pts, lab = x.tolist(), labels.tolist()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    loss, fraction = losses.batch_all_triplet_loss(x, labels, margin, squared, return_fraction=True)
    expected, expected_fraction = loop_batch_all(pts, lab, margin, squared)
    assert loss.item() == pytest.approx(expected, abs=tol)
    assert fraction == pytest.approx(expected_fraction)
    assert losses.batch_hard_triplet_loss(x, labels, margin, squared).item() == pytest.approx(
        loop_batch_hard(pts, lab, margin, squared), abs=tol)
    assert losses.semi_hard_triplet_loss(x, labels, margin, squared).item() == pytest.approx(
        loop_semi_hard(pts, lab, margin, squared), abs=tol)


@pytest.mark.parametrize("seed", range(5))
def test_online_losses_match_loops_on_random_batches(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (12,), generator=g)
    pts, lab = x.tolist(), labels.tolist()
    assert losses.batch_all_triplet_loss(x, labels).item() == pytest.approx(
        loop_batch_all(pts, lab, 1.0, True)[0], abs=1e-10)
    assert losses.batch_hard_triplet_loss(x, labels).item() == pytest.approx(
        loop_batch_hard(pts, lab, 1.0, True), abs=1e-10)
    assert losses.semi_hard_triplet_loss(x, labels, 2.0).item() == pytest.approx(
        loop_semi_hard(pts, lab, 2.0, True), abs=1e-10)
    assert losses.online_contrastive_loss(x, labels, 1.5).item() == pytest.approx(
        loop_online_contrastive(pts, lab, 1.5), abs=1e-10)


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
    loss = losses.online_contrastive_loss(x, labels, 1.0, hard=True)
    assert loss.item() == pytest.approx(sum(values) / len(values), abs=1e-10)


def test_batch_hard_matches_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning")
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
        ours = losses.batch_hard_triplet_loss(x, labels, 0.5, squared=squared)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-4, abs=1e-5), pml.__version__


# ---- no valid pair or triplet: zero loss that still back-propagates -------------------

@pytest.mark.parametrize("labels", [torch.zeros(5, dtype=torch.long), torch.arange(5)])
def test_no_valid_triplet_gives_zero_with_gradient(labels):
    x = torch.randn(5, 3, requires_grad=True)
    for loss in (losses.batch_all_triplet_loss(x, labels), losses.batch_hard_triplet_loss(x, labels),
                 losses.semi_hard_triplet_loss(x, labels)):
        assert loss.item() == 0.0
        x.grad = None
        loss.backward()
        assert torch.equal(x.grad, torch.zeros_like(x))


def test_online_contrastive_single_item_batch():
    x = torch.randn(1, 3, requires_grad=True)
    loss = losses.online_contrastive_loss(x, torch.tensor([0]))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()


def test_online_losses_backward_finite_with_duplicates():
    x = torch.randn(4, 3).repeat(2, 1).requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    for fn in (losses.batch_all_triplet_loss, losses.batch_hard_triplet_loss,
               losses.semi_hard_triplet_loss, losses.online_contrastive_loss):
        x.grad = None
        fn(x, labels).backward()
        assert torch.isfinite(x.grad).all(), fn.__name__


# ---- the book's analytic gradients -----------------------------------------------------

def test_contrastive_gradient_formula():
    """dL/dx1 = (2 y d - 2 (1 - y) [m - d]_+) (x1 - x2) / d, per pair (chapter 2)."""
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0], dtype=torch.float64)
    m = 2.0
    losses.contrastive_loss(x1, x2, y, m, reduction="sum").backward()
    d = (x1 - x2).norm(dim=1, keepdim=True).detach()
    dl_dd = 2 * y[:, None] * d - 2 * (1 - y[:, None]) * (m - d).clamp_min(0)
    torch.testing.assert_close(x1.grad, dl_dd * (x1.detach() - x2) / d)


@pytest.mark.parametrize("squared", [True, False])
def test_triplet_gradient_formulas(squared):
    """Chapter 3: gradients with respect to a, p and n for active triplets."""
    g = torch.Generator().manual_seed(1)
    a, p, n = (torch.randn(6, 4, generator=g, dtype=torch.float64).requires_grad_(True) for _ in range(3))
    losses.triplet_loss(a, p, n, margin=5.0, squared=squared, reduction="sum").backward()
    a_, p_, n_ = a.detach(), p.detach(), n.detach()
    if squared:
        ga, gp, gn = 2 * (n_ - p_), 2 * (p_ - a_), 2 * (a_ - n_)
    else:
        d_ap = (a_ - p_).norm(dim=1, keepdim=True)
        d_an = (a_ - n_).norm(dim=1, keepdim=True)
        ga, gp, gn = (a_ - p_) / d_ap - (a_ - n_) / d_an, (p_ - a_) / d_ap, (a_ - n_) / d_an
    active = (losses.triplet_loss(a_, p_, n_, 5.0, squared, reduction="none") > 0)[:, None]
    assert active.any()
    for got, expected in ((a.grad, ga), (p.grad, gp), (n.grad, gn)):
        torch.testing.assert_close(got, expected * active)


def test_gradcheck_all_losses():
    g = torch.Generator().manual_seed(2)
    x1, x2, x3 = (torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    y = torch.tensor([1, 0, 1, 0, 0, 1])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda a, b: losses.contrastive_loss(a, b, y, 3.0), (x1, x2))
    assert torch.autograd.gradcheck(lambda a, b, c: losses.triplet_loss(a, b, c, 3.0), (x1, x2, x3))
    assert torch.autograd.gradcheck(lambda a, b, c: losses.triplet_loss(a, b, c, 3.0, False), (x1, x2, x3))
    for fn in (losses.batch_all_triplet_loss, losses.batch_hard_triplet_loss,
               losses.online_contrastive_loss):
        assert torch.autograd.gradcheck(lambda e, fn=fn: fn(e, labels, 3.0), (x1,))


# ---- properties (hypothesis) ----------------------------------------------------------

# multiples of 1/4: distances and translations are exact in float64, so ties stay ties
# (semi-hard selection uses strict inequalities and is not continuous at a tie)
embeddings = arrays(np.float64, (6, 3), elements=st.integers(-40, 40).map(lambda k: k / 4))
pair_labels = arrays(np.int64, (6,), elements=st.integers(0, 1))
margins = st.floats(0.01, 10.0)


@given(embeddings, embeddings, pair_labels, margins)
def test_contrastive_properties(a, b, y, margin):
    x1, x2, y = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(y)
    loss = losses.contrastive_loss(x1, x2, y, margin, reduction="none")
    assert torch.all(loss >= 0)
    torch.testing.assert_close(loss, losses.contrastive_loss(x2, x1, y, margin, reduction="none"))
    shift = torch.tensor([3.0, -7.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(loss, losses.contrastive_loss(x1 + shift, x2 + shift, y, margin,
                                                             reduction="none"))


@given(embeddings, embeddings, embeddings, margins, st.booleans())
def test_triplet_properties(a, p, n, margin, squared):
    a, p, n = map(torch.from_numpy, (a, p, n))
    loss = losses.triplet_loss(a, p, n, margin, squared, reduction="none")
    assert torch.all(loss >= 0)
    shift = torch.tensor([1.0, 2.0, -4.0], dtype=torch.float64)
    torch.testing.assert_close(loss, losses.triplet_loss(a + shift, p + shift, n + shift, margin,
                                                         squared, reduction="none"))


@given(embeddings, arrays(np.int64, (6,), elements=st.integers(0, 2)), margins)
def test_online_properties(x, labels, margin):
    x, labels = torch.from_numpy(x), torch.from_numpy(labels)
    shift = torch.tensor([5.25, -1.5, 2.0], dtype=torch.float64)
    for fn in (losses.batch_all_triplet_loss, losses.batch_hard_triplet_loss,
               losses.semi_hard_triplet_loss, losses.online_contrastive_loss):
        value = fn(x, labels, margin)
        assert value.item() >= 0
        assert fn(x + shift, labels, margin).item() == pytest.approx(value.item(), rel=1e-6, abs=1e-6)


@given(st.floats(0.1, 5.0), st.floats(0.01, 3.0))
def test_zero_when_every_constraint_is_met_by_more_than_the_margin(margin, slack):
    # two tight clusters (classes 0 and 1), farther apart than the margin by `slack`
    gap = math.sqrt(margin) + margin + slack + 1.0
    centres = torch.tensor([[0.0, 0.0], [gap, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    x = centres[labels]  # every positive pair at distance 0
    assert losses.contrastive_loss(x[[0, 1, 3]], x[[2, 4, 5]], torch.tensor([1, 0, 1]), margin).item() == 0
    assert losses.triplet_loss(x[[0, 3]], x[[1, 4]], x[[3, 0]], margin).item() == 0
    assert losses.triplet_loss(x[[0, 3]], x[[1, 4]], x[[3, 0]], margin, squared=False).item() == 0
    for fn in (losses.batch_all_triplet_loss, losses.batch_hard_triplet_loss,
               losses.semi_hard_triplet_loss, losses.online_contrastive_loss):
        assert fn(x, labels, margin).item() == 0


# ---- bad input ------------------------------------------------------------------------

GOOD = torch.randn(4, 3)
BAD_CONTRASTIVE = [
    (dict(x1=torch.randn(4, 3), x2=torch.randn(5, 3)), "same shape"),
    (dict(x1=torch.randn(4), x2=torch.randn(4)), "2-D"),
    (dict(x1=torch.randn(0, 3), x2=torch.randn(0, 3), y=torch.ones(0)), "non-empty"),
    (dict(y=torch.tensor([0, 1, 2, 1])), "only 0 and 1"),
    (dict(y=torch.tensor([0, 1, 1])), "one entry per row"),
    (dict(margin=0.0), "margin must be > 0"),
    (dict(margin=-1.0), "margin must be > 0"),
    (dict(margin=float("nan")), "margin must be > 0"),
    (dict(x1=torch.tensor([[float("inf"), 0.0, 0.0]] * 4)), "finite"),
    (dict(metric="hamming"), "metric must be one of"),
    (dict(reduction="avg"), "reduction must be one of"),
]


@pytest.mark.parametrize("override, message", BAD_CONTRASTIVE)
def test_contrastive_bad_input(override, message):
    kwargs = dict(x1=GOOD, x2=GOOD + 1, y=torch.tensor([0, 1, 1, 0]), margin=1.0, metric="euclidean",
                  reduction="mean") | override
    with pytest.raises(ValueError, match=message):
        losses.contrastive_loss(**kwargs)


@pytest.mark.parametrize("override, message", [
    (dict(negative=torch.randn(3, 3)), "anchor and negative must have the same shape"),
    (dict(positive=torch.randn(4)), "positive must be 2-D"),
    (dict(anchor=torch.full((4, 3), float("nan"))), "anchor must be finite"),
    (dict(margin=0), "margin must be > 0"),
    (dict(reduction="max"), "reduction must be one of"),
])
def test_triplet_bad_input(override, message):
    kwargs = dict(anchor=GOOD, positive=GOOD + 1, negative=GOOD - 1, margin=1.0) | override
    with pytest.raises(ValueError, match=message):
        losses.triplet_loss(**kwargs)


@pytest.mark.parametrize("fn", [losses.batch_all_triplet_loss, losses.batch_hard_triplet_loss,
                                losses.semi_hard_triplet_loss, losses.online_contrastive_loss])
def test_online_bad_input(fn):
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        fn(GOOD, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        fn(torch.randn(4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="embeddings must be non-empty"):
        fn(torch.randn(0, 3), torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="margin must be > 0"):
        fn(GOOD, torch.tensor([0, 1, 0, 1]), -0.5)
    with pytest.raises(ValueError, match="labels must be 1-D"):
        fn(GOOD, torch.zeros(4, 1))


def test_module_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match="margin"):
        losses.ContrastiveLoss(margin=0)
    with pytest.raises(ValueError, match="metric"):
        losses.ContrastiveLoss(metric="l3")
    with pytest.raises(ValueError, match="mining must be one of"):
        losses.OnlineTripletLoss(mining="hardest")
    with pytest.raises(ValueError, match="soft=True"):
        losses.OnlineTripletLoss(mining="semi_hard", soft=True)
    with pytest.raises(ValueError, match="reduction"):
        losses.TripletLoss(reduction="median")

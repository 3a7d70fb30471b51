"""losses: hand-written loops over explicit pairs and triplets, gradients, properties, bad input."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from siamese_lib import losses, online_losses, tuning

DTYPES = [torch.float32, torch.float64]
METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine")


def dist(u, v, squared=False):
    s = sum((a - b) ** 2 for a, b in zip(u, v))
    return s if squared else math.sqrt(s)


def hand_distance(u, v, metric):
    """The four distances of two plain lists of numbers, written out."""
    if metric in ("euclidean", "sqeuclidean"):
        return dist(u, v, squared=metric == "sqeuclidean")
    if metric == "manhattan":
        return sum(abs(a - b) for a, b in zip(u, v))
    dot = sum(a * b for a, b in zip(u, v))
    return 1 - dot / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def metric_of(squared):
    return "sqeuclidean" if squared else "euclidean"


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


@pytest.mark.parametrize("metric, margin", [("manhattan", 3.0), ("cosine", 1.0), ("sqeuclidean", 5.0),
                                            ("euclidean", 2.5)])
def test_contrastive_other_metrics_match_loop(metric, margin):
    g = torch.Generator().manual_seed(4)
    x1, x2 = (torch.randn(10, 3, generator=g, dtype=torch.float64) for _ in range(2))
    y = torch.tensor([1, 0] * 5)
    expected = []
    for u, v, same in zip(x1.tolist(), x2.tolist(), y.tolist()):
        d = hand_distance(u, v, metric)
        expected.append(d**2 if same else max(margin - d, 0) ** 2)
    hinge = [e for e, same in zip(expected, y.tolist()) if not same]
    assert 0 < sum(e > 0 for e in hinge) < len(hinge)  # the margin matters for some pairs, not all
    got = losses.contrastive_loss(x1, x2, y, margin, metric, reduction="none")
    assert got.tolist() == pytest.approx(expected, abs=1e-12)


def test_contrastive_label_types():
    x1, x2 = torch.randn(6, 3), torch.randn(6, 3)
    y = torch.tensor([1, 0, 1, 0, 1, 0])
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
    metric = metric_of(squared)
    assert losses.triplet_loss(a, p, n, 1.0, metric=metric, reduction="none").tolist() == pytest.approx(
        expected, abs=tol)
    assert losses.TripletLoss(1.0, metric=metric)(a, p, n).item() == pytest.approx(np.mean(expected), abs=tol)
    wide = loop_triplet(a, p, n, 2.0, squared)  # a wider margin: some triplets active, some not
    active = [v for v in wide if v > 0]
    assert 0 < len(active) < len(wide)
    assert losses.triplet_loss(a, p, n, 2.0, metric, reduction="mean_nonzero").item() == pytest.approx(
        np.mean(active), abs=tol)


def test_triplet_agrees_with_torch():
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(16, 8, generator=g) for _ in range(3))
    for margin in (0.2, 1.0, 2.5):
        ours = losses.triplet_loss(a, p, n, margin, metric="euclidean")
        theirs = F.triplet_margin_loss(a, p, n, margin=margin)
        assert ours.item() == pytest.approx(theirs.item(), abs=1e-4)
        assert ours.item() == pytest.approx(torch.nn.TripletMarginLoss(margin)(a, p, n).item(), abs=1e-4)


def test_triplet_other_metrics():
    g = torch.Generator().manual_seed(1)
    a, p, n = (torch.randn(6, 3, generator=g, dtype=torch.float64) for _ in range(3))
    for metric in ("manhattan", "cosine"):
        expected = [max(hand_distance(ai, pi, metric) - hand_distance(ai, ni, metric) + 0.3, 0)
                    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist())]
        got = losses.triplet_loss(a, p, n, 0.3, metric=metric, reduction="none")
        assert got.tolist() == pytest.approx(expected, abs=1e-12)


def test_soft_triplet():
    a, p, n = torch.randn(3, 5, 4).unbind(0)
    expected = F.softplus(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1)).mean()
    torch.testing.assert_close(losses.triplet_loss(a, p, n, soft=True), expected)


# ---- default margins: the validated ones, not 1 ---------------------------------------

TRIPLET_METRICS = [m for m in METRICS if ("triplet", m, False) in tuning.DEFAULT_MARGIN]


@pytest.mark.parametrize("metric", METRICS)
def test_default_contrastive_margins_are_the_validated_ones(metric):
    contrastive = tuning.DEFAULT_MARGIN[("contrastive", metric, False)]
    assert losses.ContrastiveLoss(metric=metric).margin == contrastive
    # identical (non-zero) points: every distance is 0, so each term is exactly m squared
    x = torch.ones(3, 2, dtype=torch.float64)
    loss = losses.contrastive_loss(x, x, torch.zeros(3), metric=metric)
    assert loss.item() == pytest.approx(contrastive**2)


@pytest.mark.parametrize("metric", TRIPLET_METRICS)
def test_default_triplet_margins_are_the_validated_ones(metric):
    triplet = tuning.DEFAULT_MARGIN[("triplet", metric, False)]
    assert losses.TripletLoss(metric=metric).margin == triplet
    assert losses.TripletLoss(metric=metric, soft=True).margin == triplet  # the scale training reads
    assert triplet == tuning.default_margin("triplet", metric, False)
    x = torch.ones(3, 2, dtype=torch.float64)  # every distance 0: each term is exactly m
    assert losses.triplet_loss(x, x, x, metric=metric).item() == pytest.approx(triplet)
    assert losses.TripletLoss(metric=metric)(x, x, x).item() == pytest.approx(triplet)


def test_a_distance_without_a_validated_triplet_margin_asks_for_one():
    missing = [m for m in METRICS if m not in TRIPLET_METRICS]
    assert missing == ["manhattan"]  # its sweep found no best margin (see tuning.DEFAULT_MARGIN)
    with pytest.raises(ValueError, match="margin must be given for loss='triplet', metric='manhattan'"):
        losses.TripletLoss(metric="manhattan")


def test_default_margins_differ_from_one_where_validation_said_so():
    # the defaults of the distances the losses default to; a margin of 1 would be 32 times too small
    assert losses.TripletLoss().margin == tuning.DEFAULT_MARGIN[("triplet", "sqeuclidean", False)] != 1.0
    assert losses.ContrastiveLoss(metric="manhattan").margin == \
        tuning.DEFAULT_MARGIN[("contrastive", "manhattan", False)] != 1.0


def test_an_explicit_margin_wins():
    x = torch.ones(3, 2, dtype=torch.float64)
    assert losses.TripletLoss(2.5).margin == 2.5 and losses.ContrastiveLoss(0.5, "manhattan").margin == 0.5
    assert losses.triplet_loss(x, x, x, 2.5).item() == 2.5
    assert losses.triplet_loss(x, x, x, 2.5, "euclidean").item() == 2.5  # positional order unchanged
    assert losses.contrastive_loss(x, x, torch.zeros(3), 0.5, "manhattan").item() == 0.25


def test_a_margin_never_validated_must_be_given(monkeypatch):
    monkeypatch.delitem(tuning.DEFAULT_MARGIN, ("triplet", "cosine", False))
    x = torch.ones(3, 2)
    with pytest.raises(ValueError, match="margin must be given for loss='triplet', metric='cosine'"):
        losses.TripletLoss(metric="cosine")
    with pytest.raises(ValueError, match="margin must be given"):
        losses.triplet_loss(x, x, x, metric="cosine")
    assert losses.triplet_loss(x, x, x, 0.25, "cosine").item() == pytest.approx(0.25)
    # the soft-margin function does not use a margin, so it needs none
    assert losses.triplet_loss(x, x, x, metric="cosine", soft=True).item() == pytest.approx(math.log(2))


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
    losses.triplet_loss(a, p, n, margin=5.0, metric=metric_of(squared), reduction="sum").backward()
    a_, p_, n_ = a.detach(), p.detach(), n.detach()
    if squared:
        ga, gp, gn = 2 * (n_ - p_), 2 * (p_ - a_), 2 * (a_ - n_)
    else:
        d_ap = (a_ - p_).norm(dim=1, keepdim=True)
        d_an = (a_ - n_).norm(dim=1, keepdim=True)
        ga, gp, gn = (a_ - p_) / d_ap - (a_ - n_) / d_an, (p_ - a_) / d_ap, (a_ - n_) / d_an
    active = (losses.triplet_loss(a_, p_, n_, 5.0, metric_of(squared), reduction="none") > 0)[:, None]
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
    assert torch.autograd.gradcheck(lambda a, b, c: losses.triplet_loss(a, b, c, 3.0, "euclidean"),
                                    (x1, x2, x3))
    for fn in (online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss,
               online_losses.online_contrastive_loss):
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
    loss = losses.triplet_loss(a, p, n, margin, metric_of(squared), reduction="none")
    assert torch.all(loss >= 0)
    shift = torch.tensor([1.0, 2.0, -4.0], dtype=torch.float64)
    torch.testing.assert_close(loss, losses.triplet_loss(a + shift, p + shift, n + shift, margin,
                                                         metric_of(squared), reduction="none"))


@given(embeddings, arrays(np.int64, (6,), elements=st.integers(0, 2)), margins)
def test_online_properties(x, labels, margin):
    x, labels = torch.from_numpy(x), torch.from_numpy(labels)
    shift = torch.tensor([5.25, -1.5, 2.0], dtype=torch.float64)
    for fn in (online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss,
               online_losses.semi_hard_triplet_loss, online_losses.online_contrastive_loss):
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
    assert losses.triplet_loss(x[[0, 3]], x[[1, 4]], x[[3, 0]], margin, "euclidean").item() == 0
    for fn in (online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss,
               online_losses.semi_hard_triplet_loss, online_losses.online_contrastive_loss):
        assert fn(x, labels, margin).item() == 0


# ---- bad input ------------------------------------------------------------------------

GOOD = torch.randn(4, 3)
BAD_CONTRASTIVE = [
    (dict(x1=torch.randn(4, 3), x2=torch.randn(5, 3)), "same shape"),
    (dict(x1=torch.randn(4), x2=torch.randn(4)), "2-D"),
    (dict(x1=torch.randn(0, 3), x2=torch.randn(0, 3), y=torch.ones(0)), "non-empty"),
    (dict(y=torch.tensor([0, 1, 2, 1])), "only 0 and 1"),
    (dict(y=torch.tensor([0, 1, 1])), "one entry per row"),
    (dict(margin=0.0), "margin must be a number > 0"),
    (dict(margin=-1.0), "margin must be a number > 0"),
    (dict(margin=float("nan")), "margin must be a number > 0"),
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
    (dict(margin=0), "margin must be a number > 0"),
    (dict(reduction="max"), "reduction must be one of"),
])
def test_triplet_bad_input(override, message):
    kwargs = dict(anchor=GOOD, positive=GOOD + 1, negative=GOOD - 1, margin=1.0) | override
    with pytest.raises(ValueError, match=message):
        losses.triplet_loss(**kwargs)


@pytest.mark.parametrize("fn", [online_losses.batch_all_triplet_loss, online_losses.batch_hard_triplet_loss,
                                online_losses.semi_hard_triplet_loss, online_losses.online_contrastive_loss])
def test_online_bad_input(fn):
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        fn(GOOD, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        fn(torch.randn(4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="embeddings must be non-empty"):
        fn(torch.randn(0, 3), torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="margin must be a number > 0"):
        fn(GOOD, torch.tensor([0, 1, 0, 1]), -0.5)
    with pytest.raises(ValueError, match="labels must be 1-D"):
        fn(GOOD, torch.zeros(4, 1))


def test_module_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match="margin"):
        losses.ContrastiveLoss(margin=0)
    with pytest.raises(ValueError, match="metric"):
        losses.ContrastiveLoss(metric="l3")
    with pytest.raises(ValueError, match="mining must be one of"):
        online_losses.OnlineTripletLoss(mining="hardest")
    with pytest.raises(ValueError, match="mining must be one of"):
        online_losses.OnlineContrastiveLoss(mining="semi_hard")
    with pytest.raises(ValueError, match="soft=True"):
        online_losses.OnlineTripletLoss(mining="semi_hard", soft=True)
    with pytest.raises(ValueError, match="reduction"):
        online_losses.OnlineTripletLoss(reduction="median")
    with pytest.raises(ValueError, match="reduction"):
        losses.TripletLoss(reduction="median")

r"""Contrastive and triplet losses, offline (given pairs/triplets) and online (mined in a batch).

Label convention for pairs, as in the source article: :math:`y = 1` means
*same class*, :math:`y = 0` *different class*. (Hadsell et al. 2006 use the
flipped label and a factor :math:`\tfrac12`; the book explains both.)

Each loss is a function that does the math and an ``nn.Module`` that stores
the hyper-parameters and calls the function, like ``torch.nn.functional`` and
``torch.nn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import mining
from ._checks import (
    check_embeddings,
    check_labels,
    check_margin,
    check_metric,
    check_reduction,
    check_same_shape,
)
from .distances import paired_distance, pairwise

ONLINE_TRIPLET_MINING = ("batch_all", "batch_hard", "semi_hard")


def _reduce(per_item: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_item
    return per_item.sum() if reduction == "sum" else per_item.mean()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is True (everywhere if None).

    An empty selection gives a zero that is still part of the graph, so
    backward() runs and yields zero gradients instead of NaN from mean([]).
    """
    if mask is None:
        return values.sum() / max(values.numel(), 1)
    return (values * mask).sum() / mask.sum().clamp_min(1)


def _contrastive_terms(d: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair contrastive loss: ``d**2`` where ``same``, else ``max(margin - d, 0)**2``."""
    return torch.where(same, d.pow(2), F.relu(margin - d).pow(2))


def _hinge(d_ap: torch.Tensor, d_an: torch.Tensor, margin: float, soft: bool):
    if soft:
        return F.softplus(d_ap - d_an)
    return F.relu(d_ap - d_an + margin)


def _triplet_metric(squared: bool) -> str:
    return "sqeuclidean" if squared else "euclidean"


def contrastive_loss(
    x1: torch.Tensor,
    x2: torch.Tensor,
    y,
    margin: float = 1.0,
    metric: str = "euclidean",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Contrastive loss of a batch of pairs.

    .. math::

        L(x_1, x_2, y) = y\, d^2 + (1 - y)\, \max(m - d, 0)^2,
        \qquad d = d(x_1, x_2)

    Similar pairs (:math:`y=1`) are pulled together by :math:`d^2`; dissimilar
    pairs (:math:`y=0`) are pushed apart until they are at least :math:`m`
    apart, after which they cost nothing.

    Parameters
    ----------
    x1, x2 : Tensor, shape (B, D)
        Embeddings of the two sides of each pair.
    y : Tensor, shape (B,)
        1 if the pair shows the same class, 0 otherwise.
    margin : float
        :math:`m > 0`, the distance beyond which dissimilar pairs stop costing.
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        A scalar, or shape (B,) with ``reduction="none"``.

    References
    ----------
    Chopra, Hadsell and LeCun (2005); Hadsell, Chopra and LeCun (2006).
    """
    margin = check_margin(margin)
    check_reduction(reduction)
    check_metric(metric)
    d = paired_distance(x1, x2, metric)
    y = check_labels("y", y, d.shape[0], binary=True).to(d.device)
    return _reduce(_contrastive_terms(d, y == 1, margin), reduction)


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 1.0,
    squared: bool = True,
    soft: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Triplet loss of a batch of (anchor, positive, negative) triplets.

    .. math::

        L(a, p, n) = \max(d(a, p) - d(a, n) + m, 0)

    with :math:`d(u, v) = \lVert u - v\rVert^2` (``squared=True``, the source
    article and FaceNet) or :math:`\lVert u - v\rVert` (``squared=False``,
    the same as ``torch.nn.TripletMarginLoss``). With ``soft=True`` the hinge
    becomes :math:`\log(1 + e^{d(a,p) - d(a,n)})` and ``margin`` is not used
    (Hermans et al. 2017).

    Parameters
    ----------
    anchor, positive, negative : Tensor, shape (B, D)
    margin : float
        :math:`m > 0`, how much closer the positive must be than the negative.
    squared : bool
        Squared Euclidean (default) or Euclidean distance.
    soft : bool
        Soft-margin (softplus) version.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor
        A scalar, or shape (B,) with ``reduction="none"``.
    """
    margin = check_margin(margin)
    check_reduction(reduction)
    for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        check_embeddings(name, x)
    check_same_shape("anchor", anchor, "positive", positive)
    check_same_shape("anchor", anchor, "negative", negative)
    metric = _triplet_metric(squared)
    d_ap = paired_distance(anchor, positive, metric)
    d_an = paired_distance(anchor, negative, metric)
    return _reduce(_hinge(d_ap, d_an, margin, soft), reduction)


def _online_inputs(embeddings, labels, margin):
    check_embeddings("embeddings", embeddings)
    labels = check_labels("labels", labels, embeddings.shape[0])
    return labels.to(embeddings.device), check_margin(margin)


def batch_all_triplet_loss(
    embeddings: torch.Tensor,
    labels,
    margin: float = 1.0,
    squared: bool = True,
    soft: bool = False,
    return_fraction: bool = False,
):
    r"""Triplet loss over every valid triplet in the batch, averaged over the active ones.

    .. math::

        L = \frac{1}{|\mathcal{A}|} \sum_{(a,p,n) \in \mathcal{A}}
            \max(d_{ap} - d_{an} + m, 0),
        \qquad \mathcal{A} = \{(a,p,n) \text{ valid} : d_{ap} - d_{an} + m > 0\}

    Averaging only over triplets that still violate the margin keeps the loss
    from being diluted by the many easy ones (Hermans et al. 2017).

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
    labels : Tensor, shape (B,)
        Class of each row.
    margin, squared, soft
        As in :func:`triplet_loss`. With ``soft=True`` every valid triplet is active.
    return_fraction : bool
        Also return the fraction of valid triplets that are active.

    Returns
    -------
    loss : Tensor
        Scalar; 0 (with a gradient) when no triplet is active.
    fraction : float
        Only with ``return_fraction=True``.
    """
    labels, margin = _online_inputs(embeddings, labels, margin)
    dist = pairwise(embeddings, None, _triplet_metric(squared))
    # rows: positive pairs (a, p); columns: every candidate n. Same triplets as
    # mining.triplet_mask, B(K-1) x B entries instead of a B^3 cube.
    anchor, positive = mining.positive_pairs(labels)
    per_triplet = _hinge(dist[anchor, positive][:, None], dist[anchor], margin, soft)
    valid = mining.pair_masks(labels)[1][anchor]
    active = valid & (per_triplet > 0)
    loss = _masked_mean(per_triplet, active)
    if not return_fraction:
        return loss
    return loss, active.sum().item() / max(valid.sum().item(), 1)


def batch_hard_triplet_loss(
    embeddings: torch.Tensor,
    labels,
    margin: float = 1.0,
    squared: bool = True,
    soft: bool = False,
) -> torch.Tensor:
    r"""Triplet loss on each anchor's hardest positive and hardest negative.

    .. math::

        L = \frac{1}{B} \sum_a \max\Big(\max_{p} d_{ap} - \min_{n} d_{an} + m,\ 0\Big)

    Anchors without a positive or a negative in the batch are left out; see
    :func:`siamese_lib.mining.batch_hard`.
    """
    labels, margin = _online_inputs(embeddings, labels, margin)
    dist = pairwise(embeddings, None, _triplet_metric(squared))
    a, p, n = mining.batch_hard(dist, labels)
    return _masked_mean(_hinge(dist[a, p], dist[a, n], margin, soft))


def semi_hard_triplet_loss(
    embeddings: torch.Tensor,
    labels,
    margin: float = 1.0,
    squared: bool = True,
) -> torch.Tensor:
    r"""Triplet loss on semi-hard negatives (Schroff et al. 2015).

    For every positive pair :math:`(a, p)` the closest negative with
    :math:`d_{ap} < d_{an} < d_{ap} + m` is used; pairs with none are left out
    (see :func:`siamese_lib.mining.semi_hard`). Each selected triplet costs
    :math:`d_{ap} - d_{an} + m \in (0, m)`.
    """
    labels, margin = _online_inputs(embeddings, labels, margin)
    dist = pairwise(embeddings, None, _triplet_metric(squared))
    a, p, n = mining.semi_hard(dist, labels, margin)
    return _masked_mean(_hinge(dist[a, p], dist[a, n], margin, soft=False))


def online_contrastive_loss(
    embeddings: torch.Tensor,
    labels,
    margin: float = 1.0,
    metric: str = "euclidean",
    hard: bool = False,
) -> torch.Tensor:
    r"""Contrastive loss over the pairs of a batch.

    With ``hard=False`` every pair :math:`i < j` is used; with ``hard=True``
    only each anchor's farthest positive and closest negative
    (:func:`siamese_lib.mining.hard_pairs`). The per-pair loss is that of
    :func:`contrastive_loss` with :math:`y_{ij} = [\ell_i = \ell_j]`,
    averaged over the selected pairs.
    """
    labels, margin = _online_inputs(embeddings, labels, margin)
    check_metric(metric)
    dist = pairwise(embeddings, None, metric)
    if hard:
        pos_mask, neg_mask = mining.hard_pairs(dist, labels)
    else:
        pos_mask, neg_mask = mining.pair_masks(labels)
    upper = torch.ones_like(pos_mask).triu(diagonal=1)
    pos_mask, neg_mask = pos_mask & upper, neg_mask & upper
    return _masked_mean(_contrastive_terms(dist, pos_mask, margin), pos_mask | neg_mask)


class ContrastiveLoss(nn.Module):
    """Module form of :func:`contrastive_loss`; call it as ``loss(x1, x2, y)``."""

    def __init__(self, margin: float = 1.0, metric: str = "euclidean", reduction: str = "mean"):
        super().__init__()
        self.margin = check_margin(margin)
        self.metric = check_metric(metric)
        self.reduction = check_reduction(reduction)

    def forward(self, x1, x2, y):
        return contrastive_loss(x1, x2, y, self.margin, self.metric, self.reduction)

    def extra_repr(self):
        return f"margin={self.margin}, metric={self.metric!r}"


class TripletLoss(nn.Module):
    """Module form of :func:`triplet_loss`; call it as ``loss(anchor, positive, negative)``."""

    def __init__(self, margin: float = 1.0, squared: bool = True, soft: bool = False,
                 reduction: str = "mean"):
        super().__init__()
        self.margin = check_margin(margin)
        self.squared, self.soft = squared, soft
        self.reduction = check_reduction(reduction)

    def forward(self, anchor, positive, negative):
        return triplet_loss(anchor, positive, negative, self.margin, self.squared,
                            self.soft, self.reduction)

    def extra_repr(self):
        return f"margin={self.margin}, squared={self.squared}, soft={self.soft}"


class OnlineTripletLoss(nn.Module):
    """Triplet loss mined inside a labelled batch; call it as ``loss(embeddings, labels)``.

    ``mining`` is ``"batch_all"``, ``"batch_hard"`` or ``"semi_hard"``.
    """

    def __init__(self, mining: str = "batch_hard", margin: float = 1.0,
                 squared: bool = True, soft: bool = False):
        super().__init__()
        if mining not in ONLINE_TRIPLET_MINING:
            raise ValueError(f"mining must be one of {ONLINE_TRIPLET_MINING}, got {mining!r}")
        if soft and mining == "semi_hard":
            raise ValueError("soft=True needs mining 'batch_all' or 'batch_hard', "
                             "got mining='semi_hard' (semi-hard is defined by the margin)")
        self.mining = mining
        self.margin = check_margin(margin)
        self.squared, self.soft = squared, soft

    def forward(self, embeddings, labels):
        if self.mining == "semi_hard":
            return semi_hard_triplet_loss(embeddings, labels, self.margin, self.squared)
        loss_fn = batch_all_triplet_loss if self.mining == "batch_all" else batch_hard_triplet_loss
        return loss_fn(embeddings, labels, self.margin, self.squared, self.soft)

    def extra_repr(self):
        return f"mining={self.mining!r}, margin={self.margin}, squared={self.squared}"


class OnlineContrastiveLoss(nn.Module):
    """Contrastive loss over the pairs of a labelled batch; call it as ``loss(embeddings, labels)``."""

    def __init__(self, margin: float = 1.0, metric: str = "euclidean", hard: bool = False):
        super().__init__()
        self.margin = check_margin(margin)
        self.metric = check_metric(metric)
        self.hard = hard

    def forward(self, embeddings, labels):
        return online_contrastive_loss(embeddings, labels, self.margin, self.metric, self.hard)

    def extra_repr(self):
        return f"margin={self.margin}, metric={self.metric!r}, hard={self.hard}"

r"""Contrastive and triplet losses of given pairs and triplets.

Label convention for pairs, as in the source article: :math:`y = 1` means
*same class*, :math:`y = 0` *different class*. (Hadsell et al. 2006 use the
flipped label and a factor :math:`\tfrac12`; the book explains both.)

Every loss takes ``metric=`` (one of :data:`~siamese_lib.distances.METRICS`)
and ``reduction=`` (one of :data:`REDUCTIONS`). The contrastive losses
default to the Euclidean distance, the triplet losses to the squared
Euclidean distance (as in FaceNet). ``margin=None``, the default of every
loss here and in :mod:`siamese_lib.online_losses`, is the margin validated for
that loss and metric on unnormalised embeddings
(:func:`~siamese_lib.tuning.default_margin`), in the units of that metric;
give the margin for L2-normalised embeddings. The losses
over pairs and triplets mined inside a labelled batch are in
:mod:`siamese_lib.online_losses`.

Each loss is a function that does the math and an ``nn.Module`` that stores
the hyper-parameters and calls the function, like ``torch.nn.functional`` and
``torch.nn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_choice,
    check_embeddings,
    check_labels,
    check_margin,
    check_metric,
    check_same_shape,
)
from .distances import _paired

__all__ = ["REDUCTIONS", "contrastive_loss", "triplet_loss", "ContrastiveLoss", "TripletLoss"]

#: ``"mean"`` over the selected pairs or triplets, ``"mean_nonzero"`` over those with a
#: positive loss (Hermans et al.'s BA≠0), ``"sum"``, or ``"none"`` (one value each).
REDUCTIONS = ("mean", "mean_nonzero", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce per-pair or per-triplet losses.

    An empty selection gives a zero that is still part of the graph, so
    ``backward()`` runs and yields zero gradients instead of NaN from ``mean([])``.
    """
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean_nonzero":
        nonzero = values > 0
        return (values * nonzero).sum() / nonzero.sum().clamp_min(1)
    return values.sum() / max(values.numel(), 1)


def _contrastive_terms(d: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair contrastive loss: ``d**2`` where ``same``, else ``max(margin - d, 0)**2``."""
    return torch.where(same, d.pow(2), F.relu(margin - d).pow(2))


def _hinge(d_ap: torch.Tensor, d_an: torch.Tensor, margin: float, soft: bool) -> torch.Tensor:
    return F.softplus(d_ap - d_an) if soft else F.relu(d_ap - d_an + margin)


def _resolve_margin(margin, loss: str, metric: str) -> float:
    """``margin`` checked, or, if it is None, the validated margin of ``loss`` and ``metric``.

    Parameters
    ----------
    margin : float or None
        The margin asked for; None means the default.
    loss : {"contrastive", "triplet"}
        The loss the margin is for.
    metric : str
        Its distance, already checked.

    Returns
    -------
    float
        ``margin``, or :func:`~siamese_lib.tuning.default_margin` of ``loss``
        and ``metric`` on unnormalised embeddings (which raises ``ValueError``
        asking for an explicit margin where none was validated).
    """
    if margin is None:
        from .tuning import default_margin  # here, not at the top: tuning sits above the losses

        margin = default_margin(loss, metric, normalize=False)
    return check_margin(margin)


def _options(margin, metric, reduction, loss: str, *, uses_margin: bool = True):
    """Check a loss's options; a None ``margin`` becomes the default, or stays None if unused."""
    metric = check_metric(metric)
    if margin is not None or uses_margin:
        margin = _resolve_margin(margin, loss, metric)
    return margin, metric, check_choice("reduction", reduction, REDUCTIONS)


def contrastive_loss(x1: torch.Tensor, x2: torch.Tensor, y, margin: float | None = None,
                     metric: str = "euclidean", reduction: str = "mean") -> torch.Tensor:
    r"""Contrastive loss of a batch of pairs.

    .. math::

        L(x_1, x_2, y) = y\, d^2 + (1 - y)\, \max(m - d, 0)^2,
        \qquad d = d(x_1, x_2)

    Similar pairs (:math:`y=1`) are pulled together by :math:`d^2`; dissimilar
    pairs (:math:`y=0`) are pushed apart until they are at least :math:`m`
    apart, after which they cost nothing. That hinge is Hadsell et al.'s
    (2006); Chopra et al.'s (2005) impostor term never reaches zero.

    Parameters
    ----------
    x1, x2 : Tensor, shape (B, D)
        Embeddings of the two sides of each pair.
    y : Tensor, shape (B,)
        1 if the pair shows the same class, 0 otherwise.
    margin : float, optional
        :math:`m > 0`, the distance beyond which dissimilar pairs stop costing.
        Default: the validated margin for this loss and metric on unnormalised
        embeddings (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings.
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-pair losses are combined (:data:`REDUCTIONS`).

    Returns
    -------
    Tensor
        A scalar, or shape (B,) with ``reduction="none"``.

    References
    ----------
    Hadsell, Chopra and LeCun (2006), Dimensionality reduction by learning an
    invariant mapping.

    Examples
    --------
    >>> import torch
    >>> x1, x2 = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.6, 0.8], [0.3, 0.4]])
    >>> contrastive_loss(x1, x2, torch.tensor([1, 0]), margin=1.0, reduction="none")
    tensor([1.0000, 0.2500])
    """
    margin, metric, reduction = _options(margin, metric, reduction, "contrastive")
    check_embeddings("x1", x1)
    check_embeddings("x2", x2)
    check_same_shape("x1", x1, "x2", x2)
    y = check_labels("y", y, x1.shape[0], binary=True, device=x1.device)
    return _reduce(_contrastive_terms(_paired(x1, x2, metric), y == 1, margin), reduction)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float | None = None, metric: str = "sqeuclidean", soft: bool = False,
                 reduction: str = "mean") -> torch.Tensor:
    r"""Triplet loss of a batch of (anchor, positive, negative) triplets.

    .. math::

        L(a, p, n) = \max(d(a, p) - d(a, n) + m, 0)

    With the default ``metric="sqeuclidean"``, :math:`d(u, v) = \lVert u - v\rVert^2`
    (the source article and FaceNet); ``metric="euclidean"`` gives
    ``torch.nn.TripletMarginLoss``. With ``soft=True`` the hinge becomes
    :math:`\log(1 + e^{d(a,p) - d(a,n)})` and ``margin`` is not used
    (Hermans et al. 2017).

    Parameters
    ----------
    anchor, positive, negative : Tensor, shape (B, D)
        Embeddings of the three members of each triplet.
    margin : float, optional
        :math:`m > 0`, how much closer (in units of ``metric``) the positive
        must be than the negative; not used with ``soft=True``.
        Default: the validated margin for this loss and metric on unnormalised
        embeddings (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings.
    metric : {"sqeuclidean", "euclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    soft : bool
        Soft-margin (softplus) version; it has no margin.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-triplet losses are combined (:data:`REDUCTIONS`).

    Returns
    -------
    Tensor
        A scalar, or shape (B,) with ``reduction="none"``.

    Examples
    --------
    >>> import torch
    >>> a, p, n = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    >>> triplet_loss(a, p, n, margin=4.0)  # 1 - 4 + 4
    tensor(1.)
    >>> triplet_loss(a, p, n, margin=4.0, metric="euclidean")  # 1 - 2 + 4
    tensor(3.)
    """
    margin, metric, reduction = _options(margin, metric, reduction, "triplet", uses_margin=not soft)
    for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        check_embeddings(name, x)
    check_same_shape("anchor", anchor, "positive", positive)
    check_same_shape("anchor", anchor, "negative", negative)
    d_ap, d_an = _paired(anchor, positive, metric), _paired(anchor, negative, metric)
    return _reduce(_hinge(d_ap, d_an, margin, soft), reduction)


class ContrastiveLoss(nn.Module):
    """Module form of :func:`contrastive_loss`; call it as ``loss(x1, x2, y)``.

    Parameters
    ----------
    margin : float, optional
        :math:`m > 0`, the distance beyond which dissimilar pairs stop costing.
        Default: the validated margin for this loss and metric on unnormalised
        embeddings (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings. Kept, resolved, as ``.margin``.
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-pair losses are combined (:data:`REDUCTIONS`).

    Examples
    --------
    >>> from siamese_lib.tuning import default_margin
    >>> ContrastiveLoss(metric="manhattan").margin == default_margin("contrastive", "manhattan", False)
    True
    >>> ContrastiveLoss(0.5, "manhattan").margin
    0.5
    """

    def __init__(self, margin: float | None = None, metric: str = "euclidean", reduction: str = "mean"):
        super().__init__()
        self.margin, self.metric, self.reduction = _options(margin, metric, reduction, "contrastive")

    def forward(self, x1, x2, y):  # noqa: D102
        return contrastive_loss(x1, x2, y, self.margin, self.metric, self.reduction)

    def extra_repr(self):  # noqa: D102
        return f"margin={self.margin}, metric={self.metric!r}"


class TripletLoss(nn.Module):
    """Module form of :func:`triplet_loss`; call it as ``loss(anchor, positive, negative)``.

    Parameters
    ----------
    margin : float, optional
        :math:`m > 0`, in units of ``metric``. Default: the validated margin
        for this loss and metric on unnormalised embeddings
        (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings. Kept, resolved, as ``.margin`` even with
        ``soft=True``, where the loss does not use it but training reads it
        as the scale of its collapse check.
    metric : {"sqeuclidean", "euclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    soft : bool
        Soft-margin (softplus) version.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-triplet losses are combined (:data:`REDUCTIONS`).

    Examples
    --------
    >>> from siamese_lib.tuning import default_margin
    >>> TripletLoss().margin == default_margin("triplet", "sqeuclidean", normalize=False)
    True
    >>> TripletLoss(2.0).margin
    2.0
    """

    def __init__(self, margin: float | None = None, metric: str = "sqeuclidean", soft: bool = False,
                 reduction: str = "mean"):
        super().__init__()
        self.margin, self.metric, self.reduction = _options(margin, metric, reduction, "triplet")
        self.soft = soft

    def forward(self, anchor, positive, negative):  # noqa: D102
        return triplet_loss(anchor, positive, negative, self.margin, self.metric, self.soft,
                            self.reduction)

    def extra_repr(self):  # noqa: D102
        return f"margin={self.margin}, metric={self.metric!r}, soft={self.soft}"

r"""Online losses: contrastive and triplet losses over the pairs and triplets of a labelled batch.

Each takes ``(embeddings, labels)`` of a batch, usually a P×K batch
(:class:`~siamese_lib.sampling.PKSampler`), and selects its pairs or
triplets with a mining strategy of :mod:`siamese_lib.mining`:
``"batch_all"``, ``"batch_hard"`` or ``"semi_hard"``. ``metric=`` and
``reduction=`` mean what they mean in :mod:`siamese_lib.losses`.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_choice, check_embeddings, check_labels
from .distances import _pairwise
from .losses import _contrastive_terms, _hinge, _options, _reduce
from .mining import batch_hard, batch_hard_pairs, pair_masks, positive_pairs, semi_hard

#: The strategies that mine pairs in a batch (semi-hard is defined for triplets only).
_PAIR_MINING = ("batch_all", "batch_hard")

__all__ = ["batch_all_triplet_loss", "batch_hard_triplet_loss", "semi_hard_triplet_loss",
           "online_contrastive_loss", "active_fraction", "OnlineTripletLoss",
           "OnlineContrastiveLoss"]


def _online(embeddings, labels, margin, metric, reduction, loss, uses_margin=True):
    """Check the inputs of an online loss; return labels, options and the distance matrix."""
    margin, metric, reduction = _options(margin, metric, reduction, loss, uses_margin=uses_margin)
    check_embeddings("embeddings", embeddings)
    labels = check_labels("labels", labels, embeddings.shape[0], device=embeddings.device)
    return labels, margin, reduction, _pairwise(embeddings, None, metric)


def _all_triplets(labels, dist, margin, soft):
    """Losses of every valid triplet, as a 1-D tensor (the B(K-1) × B table, masked)."""
    anchor, positive = positive_pairs(labels)
    per_triplet = _hinge(dist[anchor, positive][:, None], dist[anchor], margin, soft)
    valid = pair_masks(labels)[1][anchor]
    return per_triplet[valid]


def batch_all_triplet_loss(embeddings: torch.Tensor, labels, margin: float | None = None,
                           metric: str = "sqeuclidean", soft: bool = False,
                           reduction: str = "mean_nonzero") -> torch.Tensor:
    r"""Triplet loss over every valid triplet of the batch (batch-all).

    With the default ``reduction="mean_nonzero"`` it is Hermans et al.'s BA≠0
    variant, averaged over the active triplets only:

    .. math::

        L = \frac{1}{|\mathcal{A}|} \sum_{(a,p,n) \in \mathcal{A}}
            \max(d_{ap} - d_{an} + m, 0),
        \qquad \mathcal{A} = \{(a,p,n) \text{ valid} : d_{ap} - d_{an} + m > 0\},

    which keeps the loss from being diluted by the many easy triplets;
    ``reduction="mean"`` averages over all valid triplets.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of a labelled batch.
    labels : Tensor, shape (B,)
        Class of each row.
    margin : float, optional
        :math:`m > 0`, in units of ``metric``; not used with ``soft=True``. Default: the validated
        margin for this loss and metric on unnormalised embeddings
        (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings.
    metric : {"sqeuclidean", "euclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    soft : bool
        Soft-margin version, :math:`\log(1 + e^{d_{ap} - d_{an}})` instead of the hinge;
        every valid triplet is then active.
    reduction : {"mean_nonzero", "mean", "sum", "none"}
        How the per-triplet losses are combined (:data:`~siamese_lib.losses.REDUCTIONS`);
        ``"none"`` returns the loss of every valid triplet.

    Returns
    -------
    Tensor
        Scalar; 0 (with a gradient) when no triplet is selected.

    Examples
    --------
    >>> import torch
    >>> z, labels = torch.tensor([[0.0], [1.0], [2.5]]), torch.tensor([0, 0, 1])
    >>> batch_all_triplet_loss(z, labels, margin=1.0, metric="euclidean", reduction="none")
    tensor([0.0000, 0.5000])
    >>> batch_all_triplet_loss(z, labels, margin=1.0, metric="euclidean")  # mean_nonzero
    tensor(0.5000)
    >>> batch_all_triplet_loss(z, labels, margin=1.0, metric="euclidean", reduction="mean")
    tensor(0.2500)
    """
    labels, margin, reduction, dist = _online(embeddings, labels, margin, metric, reduction, "triplet",
                                              uses_margin=not soft)
    return _reduce(_all_triplets(labels, dist, margin, soft), reduction)


def active_fraction(embeddings: torch.Tensor, labels, margin: float | None = None,
                    metric: str = "sqeuclidean") -> float:
    r"""Fraction of the valid triplets of a batch that still violate the margin.

    :math:`|\mathcal{A}| / |\text{valid}|` with :math:`\mathcal{A}` as in
    :func:`batch_all_triplet_loss`; 0 when the batch has no valid triplet.
    Computed without a gradient.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of a labelled batch.
    labels : Tensor, shape (B,)
        Class of each row.
    margin : float, optional
        :math:`m > 0`, in units of ``metric``. Default: the validated
        margin for this loss and metric on unnormalised embeddings
        (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings.
    metric : {"sqeuclidean", "euclidean", "manhattan", "cosine"}
        The distance :math:`d`.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> import torch
    >>> z, labels = torch.tensor([[0.0], [1.0], [2.5]]), torch.tensor([0, 0, 1])
    >>> active_fraction(z, labels, margin=1.0, metric="euclidean")
    0.5
    """
    with torch.no_grad():
        values = batch_all_triplet_loss(embeddings, labels, margin, metric, reduction="none")
    return (values > 0).float().mean().item() if values.numel() else 0.0


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels, margin: float | None = None,
                            metric: str = "sqeuclidean", soft: bool = False,
                            reduction: str = "mean") -> torch.Tensor:
    r"""Triplet loss on each anchor's hardest positive and hardest negative (batch-hard).

    .. math::

        L = \frac{1}{|\mathcal{U}|} \sum_{a \in \mathcal{U}}
            \max\Big(\max_{p} d_{ap} - \min_{n} d_{an} + m,\ 0\Big)

    where :math:`\mathcal{U}` holds the anchors that have both a positive and
    a negative in the batch (see :func:`siamese_lib.mining.batch_hard`).

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of a labelled batch.
    labels : Tensor, shape (B,)
        Class of each row.
    margin : float, optional
        :math:`m > 0`, in units of ``metric``; not used with ``soft=True``. Default: the validated
        margin for this loss and metric on unnormalised embeddings
        (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings.
    metric : {"sqeuclidean", "euclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    soft : bool
        Soft-margin version, :math:`\log(1 + e^{d_{ap} - d_{an}})` instead of the hinge.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-anchor losses are combined (:data:`~siamese_lib.losses.REDUCTIONS`);
        ``"none"`` returns one loss per anchor of :math:`\mathcal{U}`.

    Returns
    -------
    Tensor
        Scalar; 0 (with a gradient) when no anchor has both a positive and a negative.

    Examples
    --------
    >>> import torch
    >>> z, labels = torch.tensor([[0.0], [1.0], [2.5]]), torch.tensor([0, 0, 1])
    >>> batch_hard_triplet_loss(z, labels, margin=1.0, metric="euclidean", reduction="none")
    tensor([0.0000, 0.5000])
    """
    labels, margin, reduction, dist = _online(embeddings, labels, margin, metric, reduction, "triplet",
                                              uses_margin=not soft)
    a, p, n = batch_hard(dist, labels)
    return _reduce(_hinge(dist[a, p], dist[a, n], margin, soft), reduction)


def semi_hard_triplet_loss(embeddings: torch.Tensor, labels, margin: float | None = None,
                           metric: str = "sqeuclidean", reduction: str = "mean") -> torch.Tensor:
    r"""Triplet loss on semi-hard negatives (Schroff et al. 2015).

    For every positive pair :math:`(a, p)` the closest negative with
    :math:`d_{ap} < d_{an} < d_{ap} + m` is used; pairs with none are left out
    (see :func:`siamese_lib.mining.semi_hard`). Each selected triplet costs
    :math:`d_{ap} - d_{an} + m \in (0, m)`. There is no soft-margin
    version: semi-hard is defined by the margin.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of a labelled batch.
    labels : Tensor, shape (B,)
        Class of each row.
    margin : float, optional
        :math:`m > 0`, in units of ``metric``; it also selects the negatives. Default: the validated
        margin for this loss and metric on unnormalised embeddings
        (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`); give it for
        L2-normalised embeddings.
    metric : {"sqeuclidean", "euclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-triplet losses are combined (:data:`~siamese_lib.losses.REDUCTIONS`);
        ``"none"`` returns the loss of every selected triplet.

    Returns
    -------
    Tensor
        Scalar; 0 (with a gradient) when no positive pair has a semi-hard negative.

    Examples
    --------
    >>> import torch
    >>> z, labels = torch.tensor([[0.0], [1.0], [1.5], [5.0]]), torch.tensor([0, 0, 1, 1])
    >>> semi_hard_triplet_loss(z, labels, margin=1.0, metric="euclidean")
    tensor(0.5000)
    """
    labels, margin, reduction, dist = _online(embeddings, labels, margin, metric, reduction, "triplet")
    a, p, n = semi_hard(dist, labels, margin)
    return _reduce(_hinge(dist[a, p], dist[a, n], margin, soft=False), reduction)


def online_contrastive_loss(embeddings: torch.Tensor, labels, margin: float | None = None,
                            metric: str = "euclidean", mining: str = "batch_all",
                            reduction: str = "mean", balance: bool = False) -> torch.Tensor:
    r"""Contrastive loss over the pairs of a labelled batch.

    With ``mining="batch_all"`` every pair :math:`i < j` is used; with
    ``mining="batch_hard"`` only each anchor's farthest positive and closest
    negative (:func:`siamese_lib.mining.batch_hard_pairs`). The per-pair loss
    is that of :func:`~siamese_lib.losses.contrastive_loss` with :math:`y_{ij} = [\ell_i = \ell_j]`.
    ``reduction="none"`` returns the selected pairs' losses in row-major order.

    ``balance=True`` (with ``reduction="mean"``) averages the positive and the
    negative pairs separately and returns the mean of the two averages, so
    each kind weighs half whatever their numbers (a P×K batch of 8 × 16 holds
    960 positive and 7,168 negative pairs); the default averages all pairs.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of a labelled batch.
    labels : Tensor, shape (B,)
        Class of each row.
    margin : float, optional
        :math:`m > 0`, the distance beyond which negative pairs stop costing.
        Default: the validated margin for this loss and metric on
        unnormalised embeddings (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`);
        give it for L2-normalised embeddings.
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    mining : {"batch_all", "batch_hard"}
        Which pairs are used.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-pair losses are combined (:data:`~siamese_lib.losses.REDUCTIONS`).
    balance : bool
        Average positive and negative pairs separately (needs ``reduction="mean"``).

    Returns
    -------
    Tensor
        Scalar, or the selected pairs' losses with ``reduction="none"``; 0
        (with a gradient) when no pair is selected.

    Examples
    --------
    >>> import torch
    >>> z, labels = torch.tensor([[0.0], [0.5], [0.75]]), torch.tensor([0, 0, 1])
    >>> online_contrastive_loss(z, labels, margin=1.0, reduction="none")
    tensor([0.2500, 0.0625, 0.5625])
    >>> online_contrastive_loss(z, labels, margin=1.0, balance=True)  # (0.25 + (0.0625 + 0.5625) / 2) / 2
    tensor(0.2812)
    """
    check_choice("mining", mining, _PAIR_MINING)
    labels, margin, reduction, dist = _online(embeddings, labels, margin, metric, reduction, "contrastive")
    if balance and reduction != "mean":
        raise ValueError(f"balance=True averages positives and negatives separately: it needs "
                         f"reduction='mean', got reduction={reduction!r}")
    if mining == "batch_hard":
        pos_mask, neg_mask = batch_hard_pairs(dist, labels)
    else:
        pos_mask, neg_mask = pair_masks(labels)
    upper = torch.ones_like(pos_mask).triu(diagonal=1)
    selected = (pos_mask | neg_mask) & upper
    terms = _contrastive_terms(dist, pos_mask, margin)
    if balance:
        return (_reduce(terms[pos_mask & upper], "mean") + _reduce(terms[neg_mask & upper], "mean")) / 2
    return _reduce(terms[selected], reduction)


_TRIPLET_LOSSES = {"batch_all": batch_all_triplet_loss, "batch_hard": batch_hard_triplet_loss,
                   "semi_hard": semi_hard_triplet_loss}


class OnlineTripletLoss(nn.Module):
    """Triplet loss mined inside a labelled batch; call it as ``loss(embeddings, labels)``.

    Parameters
    ----------
    mining : {"batch_all", "batch_hard", "semi_hard"}
        Which triplets are used: :func:`batch_all_triplet_loss`,
        :func:`batch_hard_triplet_loss` or :func:`semi_hard_triplet_loss`.
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
        Soft-margin version (not with ``"semi_hard"``, which the margin defines).
    reduction : {"mean_nonzero", "mean", "sum", "none"}, optional
        Default: that loss's default (``"mean_nonzero"`` for batch-all,
        ``"mean"`` for the others).

    Examples
    --------
    >>> from siamese_lib.tuning import default_margin
    >>> OnlineTripletLoss("batch_hard").margin == default_margin("triplet", "sqeuclidean", False)
    True
    >>> OnlineTripletLoss("batch_hard", 0.5, "euclidean")
    OnlineTripletLoss(mining='batch_hard', margin=0.5, metric='euclidean', soft=False, reduction='mean')
    """

    def __init__(self, mining: str = "batch_all", margin: float | None = None,
                 metric: str = "sqeuclidean", soft: bool = False, reduction: str | None = None):
        super().__init__()
        self.mining = check_choice("mining", mining, tuple(_TRIPLET_LOSSES))
        if soft and mining == "semi_hard":
            raise ValueError("soft=True needs mining 'batch_all' or 'batch_hard', "
                             "got mining='semi_hard' (semi-hard is defined by the margin)")
        if reduction is None:
            reduction = "mean_nonzero" if mining == "batch_all" else "mean"
        self.margin, self.metric, self.reduction = _options(margin, metric, reduction, "triplet")
        self.soft = soft

    def forward(self, embeddings, labels):  # noqa: D102
        options = dict(margin=self.margin, metric=self.metric, reduction=self.reduction)
        if self.mining != "semi_hard":
            options["soft"] = self.soft
        return _TRIPLET_LOSSES[self.mining](embeddings, labels, **options)

    def extra_repr(self):  # noqa: D102
        return (f"mining={self.mining!r}, margin={self.margin}, metric={self.metric!r}, "
                f"soft={self.soft}, reduction={self.reduction!r}")


class OnlineContrastiveLoss(nn.Module):
    """Module form of :func:`online_contrastive_loss`; call it as ``loss(embeddings, labels)``.

    Parameters
    ----------
    margin : float, optional
        :math:`m > 0`, the distance beyond which negative pairs stop costing.
        Default: the validated margin for this loss and metric on
        unnormalised embeddings (:data:`~siamese_lib.tuning.DEFAULT_MARGIN`);
        give it for L2-normalised embeddings. Kept, resolved, as ``.margin``.
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d`.
    mining : {"batch_all", "batch_hard"}
        Which pairs are used.
    reduction : {"mean", "mean_nonzero", "sum", "none"}
        How the per-pair losses are combined.
    balance : bool
        Average positive and negative pairs separately (needs ``reduction="mean"``).

    Examples
    --------
    >>> from siamese_lib.tuning import default_margin
    >>> OnlineContrastiveLoss().margin == default_margin("contrastive", "euclidean", False)
    True
    """

    def __init__(self, margin: float | None = None, metric: str = "euclidean", mining: str = "batch_all",
                 reduction: str = "mean", balance: bool = False):
        super().__init__()
        self.margin, self.metric, self.reduction = _options(margin, metric, reduction, "contrastive")
        self.mining = check_choice("mining", mining, _PAIR_MINING)
        self.balance = balance

    def forward(self, embeddings, labels):  # noqa: D102
        return online_contrastive_loss(embeddings, labels, self.margin, self.metric, self.mining,
                                       self.reduction, self.balance)

    def extra_repr(self):  # noqa: D102
        return (f"mining={self.mining!r}, margin={self.margin}, metric={self.metric!r}, "
                f"balance={self.balance}")

r"""InfoNCE losses over a batch: NT-Xent (SimCLR) and the supervised contrastive loss (SupCon).

The losses that came after the triplet loss compare an anchor with *every*
other row of the batch at once, through a softmax. Like the losses of
:mod:`siamese_lib.online_losses` they take ``(embeddings, labels)``;
``labels`` says which rows are positives of each other. For anchor :math:`i`,
:math:`P(i) = \{p \ne i : \ell_p = \ell_i\}` are its positives and
:math:`N(i) = \{n : \ell_n \ne \ell_i\}` its negatives.

**Similarity.** Rows :math:`i` and :math:`k` have the similarity

.. math::

    s_{ik} = 1 - d(x_i, x_k) = \frac{x_i^\top x_k}{\lVert x_i\rVert\,\lVert x_k\rVert}
    \ \text{ with } \texttt{metric="cosine"}, \qquad
    s_{ik} = -d(x_i, x_k) \ \text{ with the other metrics,}

:math:`d` a distance of :mod:`siamese_lib.distances` (``"sqeuclidean"``
gives the negative squared Euclidean distance, as in the soft-margin triplet
loss). The constant 1 of the cosine similarity cancels in every ratio below
(the code uses :math:`-d` throughout), so with every metric the losses see
the embeddings only through :math:`d / \tau`: the temperature
:math:`\tau > 0` is the distance they resolve.

**NT-Xent** (InfoNCE of Oord et al. 2018, SimCLR's loss in Chen et al. 2020)
has one term per ordered (anchor, positive) pair,

.. math::

    \ell_{ip} = -\log \frac{e^{s_{ip}/\tau}}{e^{s_{ip}/\tau} + \sum_{n \in N(i)} e^{s_{in}/\tau}}
             = \log\Big(1 + \sum_{n \in N(i)} e^{(s_{in} - s_{ip})/\tau}\Big),

**SupCon** (Khosla et al. 2020, their :math:`\mathcal{L}^{\text{sup}}_{\text{out}}`)
one term per anchor,

.. math::

    L_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
          \log \frac{e^{s_{ip}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}}.

With exactly one positive per anchor, as with two views of each image
(:func:`views_labels`), the two denominators are the same set
:math:`\{k \ne i\}` and the two losses are equal. With more positives they
differ: NT-Xent leaves the anchor's *other* positives out of each term's
denominator, so each positive competes with the negatives only; SupCon keeps
them in, so an anchor with :math:`|P(i)|` positives costs at least
:math:`\log |P(i)|`.

**Relation to the triplet loss.** With one positive and one negative and
:math:`\tau = 1`, :math:`\ell_{ap} = \log(1 + e^{d_{ap} - d_{an}})`, the
soft-margin triplet loss (:func:`~siamese_lib.losses.triplet_loss` with
``soft=True``); other temperatures divide both distances by :math:`\tau`.
As :math:`\tau \to 0`,
:math:`\tau\,\ell_{ip} \to \max(0, \max_{n} s_{in} - s_{ip})`: a hinge on the
hardest negative, with margin 0. Indeed
:math:`\max(0, \max_n s_{in} - s_{ip}) \le \tau\,\ell_{ip} \le \max(0, \max_n s_{in} - s_{ip})
+ \tau \log(1 + |N(i)|)` at every :math:`\tau`, and the gradient weights of
two negatives stand in the ratio :math:`e^{(s_{in} - s_{in'})/\tau}`.

**pytorch-metric-learning.** With ``metric="cosine"`` these are its
``NTXentLoss(temperature=τ)`` and ``SupConLoss(temperature=τ)`` (whose
default distance is the cosine similarity): the same per-pair and per-anchor
terms, in the same order, and the same averages, except where PML returns 0
for a batch in which no row has a positive (here a ``ValueError``) and the
cases listed under :func:`supcon_loss`.

Both are computed with log-sum-exp, which subtracts each row's maximum before
exponentiating: finite at any :math:`\tau`, with finite gradients also where
embeddings coincide.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import (
    check_choice,
    check_embeddings,
    check_labels,
    check_metric,
    check_number,
    checking_values,
)
from .distances import _pairwise
from .mining import pair_masks

__all__ = ["REDUCTIONS", "views_labels", "nt_xent_loss", "supcon_loss", "NTXentLoss", "SupConLoss"]

#: ``"mean"`` over the terms, ``"sum"``, or ``"none"`` (one value each). Every term is positive,
#: so :data:`siamese_lib.losses.REDUCTIONS`' ``"mean_nonzero"`` would be ``"mean"``.
REDUCTIONS = ("mean", "sum", "none")


def views_labels(n: int, device=None) -> torch.Tensor:
    """Labels of a batch of two views of each of ``n`` images: row ``i`` and row ``i + n`` share a label.

    The layout of SimCLR: the first ``n`` rows are one augmentation of the
    ``n`` images, the last ``n`` rows another. It is what
    :func:`nt_xent_loss` assumes when ``labels`` is None.

    Parameters
    ----------
    n : int
        Number of images, at least 1 (the batch has ``2 * n`` rows).
    device : str or torch.device, optional
        Where to put the labels (default: the CPU).

    Returns
    -------
    Tensor of int64, shape (2n,)
        ``torch.arange(n).repeat(2)``.

    Examples
    --------
    >>> views_labels(3)
    tensor([0, 1, 2, 0, 1, 2])
    """
    n = check_number("n", n, low=1, integer=True)
    return torch.arange(n, device=device).repeat(2)


def _options(temperature, metric, reduction):
    """Check the options of a loss; return them as (float, str, str)."""
    temperature = check_number("temperature", temperature, low=0, low_open=True)
    return temperature, check_metric(metric), check_choice("reduction", reduction, REDUCTIONS)


def _batch(embeddings, labels, temperature, metric):
    """Check a labelled batch; return the positive and negative masks and the logits ``s / τ``."""
    check_embeddings("embeddings", embeddings)
    n = embeddings.shape[0]
    labels = check_labels("labels", labels, n, device=embeddings.device)
    pos, neg = pair_masks(labels)
    if n < 2 or (checking_values() and not pos.any()):
        got = "a single row" if n == 1 else f"{n} rows, each with a label of its own"
        raise ValueError(f"labels must give at least one row a positive (another row with its label), "
                         f"got {got}")
    # s = -d; the cosine similarity is 1 - d, but a constant added to a row cancels in its softmax
    return pos, neg, -_pairwise(embeddings, None, metric) / temperature


def _reduce_where(values: torch.Tensor, keep: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce the entries of ``values`` where ``keep``; ``"none"`` returns them in row-major order.

    Sums are taken with ``torch.where``, not by indexing, so ``"mean"`` and
    ``"sum"`` do not wait for an accelerator; nothing kept gives a zero that
    is still part of the graph.
    """
    if reduction == "none":
        return values[keep]
    total = torch.where(keep, values, 0).sum()
    return total if reduction == "sum" else total / keep.sum().clamp_min(1)


def _nt_xent_terms(logits: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    r"""``[i, p]`` is :math:`\log(1 + \sum_{n \in N(i)} e^{l_{in} - l_{ip}})` for every pair of rows."""
    # log sum over N(i) of e^{l_in} by log-sum-exp, which subtracts the row max: -inf for an anchor
    # without negatives, whose terms are then log 1 = 0 (masked_fill gives the masked entries a zero
    # gradient, so such a row's gradient is 0, not NaN)
    lse_neg = torch.logsumexp(logits.masked_fill(~neg, -math.inf), dim=1, keepdim=True)
    return torch.logaddexp(torch.zeros_like(logits), lse_neg - logits)


def nt_xent_loss(embeddings: torch.Tensor, labels=None, temperature: float = 0.1, metric: str = "cosine",
                 reduction: str = "mean") -> torch.Tensor:
    r"""NT-Xent (InfoNCE) loss of a batch: each positive against the anchor's negatives, through a softmax.

    For every ordered pair of an anchor :math:`i` and a positive
    :math:`p \in P(i)`,

    .. math::

        \ell_{ip} = -\log \frac{e^{s_{ip}/\tau}}
                              {e^{s_{ip}/\tau} + \sum_{n \in N(i)} e^{s_{in}/\tau}},
        \qquad L = \frac{1}{T} \sum_{i} \sum_{p \in P(i)} \ell_{ip},

    :math:`T` the number of ordered positive pairs, :math:`s` the similarity
    of the module docstring (the cosine similarity, or :math:`-d`). With two
    views of each image every anchor has one positive and the denominator is
    :math:`\sum_{k \ne i} e^{s_{ik}/\tau}`: SimCLR's loss. With several
    positives each is its own term, and the anchor's other positives are in
    neither its numerator nor its denominator, as in pytorch-metric-learning's
    ``NTXentLoss``. An anchor without negatives (a batch of one class) costs
    :math:`-\log 1 = 0`.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of the batch.
    labels : Tensor, shape (B,), optional
        Rows with the same label are positives of each other, e.g. the class,
        or the image two views were made from. None means two views of each of
        :math:`B/2` images, row :math:`i` and row :math:`i + B/2` (labels
        :func:`views_labels` of :math:`B/2`); :math:`B` must then be even.
    temperature : float
        :math:`\tau > 0`; smaller values weigh the hardest negatives more.
    metric : {"cosine", "sqeuclidean", "euclidean", "manhattan"}
        The distance behind the similarity: :math:`s = 1 - d` for
        ``"cosine"``, :math:`s = -d` for the others.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` over the ordered (anchor, positive) pairs, their ``"sum"``,
        or ``"none"``: one value per pair, in row-major order of (anchor,
        positive), the order of :func:`siamese_lib.mining.positive_pairs`.

    Returns
    -------
    Tensor
        A scalar, or shape (T,) with ``reduction="none"``.

    Raises
    ------
    ValueError
        For a bad option or input, naming it, or when no row has a positive
        (a check that reads the labels; with the value checks off, as when
        training on an accelerator, such a batch gives 0 with a gradient).

    References
    ----------
    Oord, Li and Vinyals (2018), Representation learning with contrastive
    predictive coding. Chen, Kornblith, Norouzi and Hinton (2020), A simple
    framework for contrastive learning of visual representations.

    Examples
    --------
    Anchor, positive and negative on a line; at :math:`\tau = 1` the (anchor,
    positive) term is the soft-margin triplet loss :math:`\log(1 + e^{1 - 3})`:

    >>> import math, torch
    >>> z, labels = torch.tensor([[0.0], [1.0], [3.0]]), torch.tensor([0, 0, 1])
    >>> nt_xent_loss(z, labels, temperature=1.0, metric="euclidean", reduction="none")
    tensor([0.1269, 0.3133])
    >>> round(math.log(1 + math.exp(1 - 3)), 4)
    0.1269

    Two identical views of three orthogonal images, ``labels=None``: each
    anchor's positive has similarity 1, its four negatives 0, so every term is
    :math:`\log(1 + 4 e^{-1/\tau})`:

    >>> nt_xent_loss(torch.eye(3).repeat(2, 1), temperature=0.5)
    tensor(0.4327)
    """
    temperature, metric, reduction = _options(temperature, metric, reduction)
    if labels is None:
        check_embeddings("embeddings", embeddings)
        if embeddings.shape[0] % 2:
            raise ValueError(f"embeddings must have an even number of rows when labels is None (row i "
                             f"and row i + B/2 are two views of one image), got {embeddings.shape[0]}")
        labels = views_labels(embeddings.shape[0] // 2, device=embeddings.device)
    pos, neg, logits = _batch(embeddings, labels, temperature, metric)
    return _reduce_where(_nt_xent_terms(logits, neg), pos, reduction)


def supcon_loss(embeddings: torch.Tensor, labels, temperature: float = 0.1, metric: str = "cosine",
                reduction: str = "mean") -> torch.Tensor:
    r"""Supervised contrastive loss of a labelled batch (Khosla et al. 2020, their L_out).

    For every anchor :math:`i` with at least one positive,

    .. math::

        L_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
              \log \frac{e^{s_{ip}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}}
            = \log \sum_{k \ne i} e^{s_{ik}/\tau} - \frac{1}{|P(i)|} \sum_{p \in P(i)} \frac{s_{ip}}{\tau},
        \qquad L = \frac{1}{|A|} \sum_{i \in A} L_i,

    :math:`A` the anchors with a positive, :math:`s` the similarity of the
    module docstring. Anchors without a positive (a class of one row in the
    batch) have no term; they still serve as negatives of the others. The
    denominator holds every other row, the anchor's other positives included
    (unlike :func:`nt_xent_loss`, with which it agrees when each anchor has
    exactly one positive).

    Conventions of pytorch-metric-learning's ``SupConLoss``: the same
    :math:`L_i`, and the same anchors without a positive, which it gives a
    loss of 0 that its default ``AvgNonZeroReducer`` leaves out of the mean.
    That reducer leaves out *every* zero, so two cases differ: an anchor
    whose :math:`L_i` rounds to exactly 0 (one positive far closer than every
    negative, at a small :math:`\tau`) is left out of PML's mean but counted
    here, and a batch of one class, where PML returns 0, costs
    :math:`L_i \ge \log |P(i)|` here, as in Khosla et al.'s formula. A batch
    where no row has a positive is an error here, 0 in PML.

    Parameters
    ----------
    embeddings : Tensor, shape (B, D)
        Embeddings of a labelled batch.
    labels : Tensor, shape (B,)
        Class of each row (or, with :func:`views_labels`, the image of each view).
    temperature : float
        :math:`\tau > 0`; Khosla et al. use 0.1.
    metric : {"cosine", "sqeuclidean", "euclidean", "manhattan"}
        The distance behind the similarity: :math:`s = 1 - d` for
        ``"cosine"``, :math:`s = -d` for the others.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` over the anchors with a positive, their ``"sum"``, or
        ``"none"``: one value per anchor with a positive, in row order.

    Returns
    -------
    Tensor
        A scalar, or one value per anchor of :math:`A` with ``reduction="none"``.

    Raises
    ------
    ValueError
        For a bad option or input, naming it, or when no row has a positive
        (a check that reads the labels; with the value checks off, as when
        training on an accelerator, such a batch gives 0 with a gradient).

    References
    ----------
    Khosla, Teterwak, Wang, Sarna, Tian, Isola, Maschinot, Liu and Krishnan
    (2020), Supervised contrastive learning.

    Examples
    --------
    Three rows of class 0 at one point, one of class 1 orthogonal to them; at
    :math:`\tau = 1` each anchor of class 0 costs
    :math:`-\log\frac{e}{2e + 1}`, and the row of class 1 has no positive:

    >>> import math, torch
    >>> z, labels = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]]), torch.tensor([0, 0, 0, 1])
    >>> supcon_loss(z, labels, temperature=1.0, reduction="none")
    tensor([0.8620, 0.8620, 0.8620])
    >>> round(-math.log(math.e / (2 * math.e + 1)), 4)
    0.862

    NT-Xent leaves the other positive out of each denominator:
    :math:`-\log\frac{e}{e + 1}`.

    >>> nt_xent_loss(z, labels, temperature=1.0)
    tensor(0.3133)
    """
    temperature, metric, reduction = _options(temperature, metric, reduction)
    pos, _, logits = _batch(embeddings, labels, temperature, metric)
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    # log sum over k != i of e^{l_ik}, by log-sum-exp (which subtracts the row max); B >= 2 rows
    log_denominator = torch.logsumexp(logits.masked_fill(eye, -math.inf), dim=1)
    n_pos = pos.sum(dim=1)
    mean_pos_logit = torch.where(pos, logits, 0).sum(dim=1) / n_pos.clamp_min(1)
    return _reduce_where(log_denominator - mean_pos_logit, n_pos > 0, reduction)


class _InfoNCE(nn.Module):
    """The options and the collapse scale that :class:`NTXentLoss` and :class:`SupConLoss` share."""

    def __init__(self, temperature: float, metric: str, reduction: str):
        super().__init__()
        self.temperature, self.metric, self.reduction = _options(temperature, metric, reduction)

    @property
    def margin(self) -> float:
        r"""The scale :func:`siamese_lib.training.fit` reads for its collapse check (this loss has no margin).

        ``fit`` warns when the mean distance between embeddings falls below
        ``collapse_ratio * margin``. For ``"cosine"`` that scale is 1, the
        cosine distance between orthogonal embeddings: cosine distances are
        bounded whatever the norms, so collapse means the same at every
        :math:`\tau`. The other metrics have no scale of their own on
        unnormalised embeddings, and the loss sees them only through
        :math:`d/\tau`: their scale is :math:`\tau`, a small fraction of
        which leaves every logit of a row nearly the same and the softmax
        nearly uniform.
        """
        return 1.0 if self.metric == "cosine" else self.temperature

    def extra_repr(self):  # noqa: D102
        return f"temperature={self.temperature}, metric={self.metric!r}, reduction={self.reduction!r}"


class NTXentLoss(_InfoNCE):
    r"""Module form of :func:`nt_xent_loss`; call it as ``loss(embeddings)`` or ``loss(embeddings, labels)``.

    Parameters
    ----------
    temperature : float
        :math:`\tau > 0`. Kept as ``.temperature``.
    metric : {"cosine", "sqeuclidean", "euclidean", "manhattan"}
        The distance behind the similarity. Kept as ``.metric``.
    reduction : {"mean", "sum", "none"}
        How the per-pair losses are combined (:data:`REDUCTIONS`).

    Notes
    -----
    ``.margin`` is not a margin of the loss, which has none: it is the scale
    of the collapse check of :func:`siamese_lib.training.fit`, 1 for
    ``"cosine"`` (the cosine distance of orthogonal embeddings) and
    :math:`\tau` for the other metrics (the distance the loss resolves).

    Examples
    --------
    >>> loss = NTXentLoss(0.5)
    >>> loss
    NTXentLoss(temperature=0.5, metric='cosine', reduction='mean')
    >>> loss(torch.eye(3).repeat(2, 1))  # two views of three images, labels=None
    tensor(0.4327)
    >>> loss.margin, NTXentLoss(0.5, "sqeuclidean").margin
    (1.0, 0.5)
    """

    def __init__(self, temperature: float = 0.1, metric: str = "cosine", reduction: str = "mean"):
        super().__init__(temperature, metric, reduction)

    def forward(self, embeddings, labels=None):  # noqa: D102
        return nt_xent_loss(embeddings, labels, self.temperature, self.metric, self.reduction)


class SupConLoss(_InfoNCE):
    r"""Module form of :func:`supcon_loss`; call it as ``loss(embeddings, labels)``.

    Parameters
    ----------
    temperature : float
        :math:`\tau > 0`. Kept as ``.temperature``.
    metric : {"cosine", "sqeuclidean", "euclidean", "manhattan"}
        The distance behind the similarity. Kept as ``.metric``.
    reduction : {"mean", "sum", "none"}
        How the per-anchor losses are combined (:data:`REDUCTIONS`).

    Notes
    -----
    ``.margin`` is the scale of the collapse check of
    :func:`siamese_lib.training.fit`, as for :class:`NTXentLoss`.

    Examples
    --------
    >>> z, labels = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]]), torch.tensor([0, 0, 0, 1])
    >>> SupConLoss(1.0)(z, labels)
    tensor(0.8620)
    """

    def __init__(self, temperature: float = 0.1, metric: str = "cosine", reduction: str = "mean"):
        super().__init__(temperature, metric, reduction)

    def forward(self, embeddings, labels):  # noqa: D102
        return supcon_loss(embeddings, labels, self.temperature, self.metric, self.reduction)

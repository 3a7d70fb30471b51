r"""Vectorised selection of pairs and triplets inside a labelled batch.

Everything here works on a ``(B, B)`` distance matrix ``dist`` and a label
vector ``labels`` of length ``B``. No Python loop runs over anchors: each
selector is a handful of tensor operations, :math:`O(B^2)` memory for pairs and
:math:`O(B^3)` booleans for the full triplet mask.

Notation (as in the book): for an anchor :math:`a`, a *positive* :math:`p` is
another item with the same label, a *negative* :math:`n` an item with a
different label; :math:`d_{ap} = d(a, p)` and :math:`d_{an} = d(a, n)`.

The mining strategies have one set of names everywhere in the library (losses,
:func:`~siamese_lib.experiments.run`, the command line), listed in
:data:`STRATEGIES`:

* ``"random"``: pairs or triplets drawn at random before they are encoded
  (no mining);
* ``"batch_all"``: every valid pair or triplet of a P×K batch;
* ``"batch_hard"``: each anchor's hardest positive and hardest negative
  (Hermans et al. 2017);
* ``"semi_hard"``: for each positive pair, the closest negative that is
  farther than the positive but inside the margin (Schroff et al. 2015;
  triplets only).
"""

from __future__ import annotations

import torch

from ._checks import check_labels, check_margin

__all__ = ["STRATEGIES", "pair_masks", "triplet_mask", "positive_pairs", "batch_hard",
           "semi_hard", "batch_hard_pairs"]

#: Mining strategies, in the order the book introduces them.
STRATEGIES = ("random", "batch_all", "batch_hard", "semi_hard")


def _check(dist: torch.Tensor, labels) -> torch.Tensor:
    if not isinstance(dist, torch.Tensor) or dist.dim() != 2:
        shape = tuple(dist.shape) if isinstance(dist, torch.Tensor) else type(dist).__name__
        raise ValueError(f"dist must be a square 2-D tensor, got {shape}")
    if dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be square, got shape {tuple(dist.shape)}")
    if dist.shape[0] == 0:
        raise ValueError("dist must be non-empty, got an empty batch")
    return check_labels("labels", labels, dist.shape[0], device=dist.device)


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of positive and negative pairs.

    Parameters
    ----------
    labels : Tensor, shape (B,)
        Class of each item.

    Returns
    -------
    pos_mask, neg_mask : Tensor of bool, shape (B, B)
        ``pos_mask[i, j]`` is True when ``i != j`` and ``labels[i] == labels[j]``;
        ``neg_mask[i, j]`` is True when ``labels[i] != labels[j]``.

    Examples
    --------
    >>> import torch
    >>> pos, neg = pair_masks(torch.tensor([0, 0, 1]))
    >>> pos.int()
    tensor([[0, 1, 0],
            [1, 0, 0],
            [0, 0, 0]], dtype=torch.int32)
    >>> neg.int()
    tensor([[0, 0, 1],
            [0, 0, 1],
            [1, 1, 0]], dtype=torch.int32)
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """Boolean mask of all valid triplets.

    Parameters
    ----------
    labels : Tensor, shape (B,)
        Class of each item.

    Returns
    -------
    Tensor of bool, shape (B, B, B)
        ``mask[a, p, n]`` is True when ``p`` is a positive and ``n`` a negative
        of anchor ``a``.

    Examples
    --------
    >>> import torch
    >>> triplet_mask(torch.tensor([0, 0, 1])).nonzero().tolist()
    [[0, 1, 2], [1, 0, 2]]
    """
    pos_mask, neg_mask = pair_masks(labels)
    return pos_mask[:, :, None] & neg_mask[:, None, :]


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(anchor, positive)`` of every ordered positive pair of the batch.

    Parameters
    ----------
    labels : Tensor, shape (B,)
        Class of each item.

    Returns
    -------
    anchor, positive : Tensor of int64, shape (T,)
        One entry per ordered pair ``(i, j)``, ``i != j``, with ``labels[i] == labels[j]``,
        in row-major order.

    Examples
    --------
    >>> import torch
    >>> positive_pairs(torch.tensor([0, 1, 0]))
    (tensor([0, 2]), tensor([2, 0]))
    """
    pos_mask, _ = pair_masks(labels)
    return torch.nonzero(pos_mask, as_tuple=True)


def batch_hard(dist: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Hardest positive and hardest negative of every anchor (Hermans et al. 2017).

    For anchor :math:`a`: :math:`p^* = \arg\max_{p} d_{ap}` over its positives
    and :math:`n^* = \arg\min_{n} d_{an}` over its negatives. Anchors without a
    positive or without a negative are dropped.

    Parameters
    ----------
    dist : Tensor, shape (B, B)
        Distances within the batch.
    labels : Tensor, shape (B,)
        Class of each item.

    Returns
    -------
    anchor, positive, negative : Tensor of int64, shape (T,)
        Indices of the selected triplets, one per usable anchor.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [1.5]])
    >>> batch_hard(torch.cdist(x, x), torch.tensor([0, 0, 0, 1]))
    (tensor([0, 1, 2]), tensor([2, 2, 0]), tensor([3, 3, 3]))

    The last item is the only one of its class: it has no positive, so it is
    no anchor.
    """
    labels = _check(dist, labels)
    pos_mask, neg_mask = pair_masks(labels)
    d = dist.detach()
    d_ap, hardest_pos = torch.where(pos_mask, d, -torch.inf).max(dim=1)
    d_an, hardest_neg = torch.where(neg_mask, d, torch.inf).min(dim=1)
    # an anchor without a positive (negative) keeps -inf (inf) as its hardest distance
    anchor = torch.nonzero(torch.isfinite(d_ap) & torch.isfinite(d_an)).flatten()
    return anchor, hardest_pos[anchor], hardest_neg[anchor]


def semi_hard(dist: torch.Tensor, labels, margin: float) -> tuple[torch.Tensor, ...]:
    r"""Semi-hard negative for every positive pair (Schroff et al. 2015, FaceNet).

    A negative is semi-hard for the pair :math:`(a, p)` when it is farther than
    the positive but still inside the margin:
    :math:`d_{ap} < d_{an} < d_{ap} + m`. Of those, the closest one is chosen.
    Pairs with no semi-hard negative are dropped.

    Works on the (positive pair × candidate) table, of size
    :math:`B(K-1) \times B` for a P×K batch, rather than the full :math:`B^3` cube.

    Parameters
    ----------
    dist : Tensor, shape (B, B)
        Distances within the batch.
    labels : Tensor, shape (B,)
        Class of each item.
    margin : float
        :math:`m > 0`, in the units of ``dist``.

    Returns
    -------
    anchor, positive, negative : Tensor of int64, shape (T,)
        Indices of the selected triplets.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [1.5], [5.0]])
    >>> semi_hard(torch.cdist(x, x), torch.tensor([0, 0, 1, 1]), margin=1.0)
    (tensor([0, 3]), tensor([1, 2]), tensor([2, 1]))
    """
    labels = _check(dist, labels)
    margin = check_margin(margin)
    _, neg_mask = pair_masks(labels)
    anchor, positive = positive_pairs(labels)
    d = dist.detach()
    d_ap = d[anchor, positive][:, None]
    d_an = d[anchor]
    candidates = neg_mask[anchor] & (d_an > d_ap) & (d_an < d_ap + margin)
    negative = d_an.masked_fill(~candidates, torch.inf).argmin(dim=1)
    keep = candidates.any(dim=1)
    return anchor[keep], positive[keep], negative[keep]


def batch_hard_pairs(dist: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-hard pairs: each anchor's farthest positive and closest negative, as pairs.

    The pair version of :func:`batch_hard`, for the contrastive loss.

    Parameters
    ----------
    dist : Tensor, shape (B, B)
        Distances within the batch.
    labels : Tensor, shape (B,)
        Class of each item.

    Returns
    -------
    pos_mask, neg_mask : Tensor of bool, shape (B, B)
        Symmetric masks of the selected positive and negative pairs.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    >>> pos, neg = batch_hard_pairs(torch.cdist(x, x), torch.tensor([0, 0, 1, 1]))
    >>> pos.nonzero().tolist(), neg.nonzero().tolist()
    ([[0, 1], [1, 0], [2, 3], [3, 2]], [[0, 2], [1, 2], [1, 3], [2, 0], [2, 1], [3, 1]])
    """
    anchor, positive, negative = batch_hard(dist, labels)
    pos_mask = torch.zeros_like(dist, dtype=torch.bool)
    neg_mask = torch.zeros_like(dist, dtype=torch.bool)
    pos_mask[anchor, positive] = True
    neg_mask[anchor, negative] = True
    return pos_mask | pos_mask.T, neg_mask | neg_mask.T

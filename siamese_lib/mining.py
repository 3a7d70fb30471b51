r"""Vectorised selection of pairs and triplets inside a labelled batch.

Everything here works on a ``(B, B)`` distance matrix ``dist`` and a label
vector ``labels`` of length ``B``. No Python loop runs over anchors: each
selector is a handful of tensor operations, :math:`O(B^2)` memory for pairs and
:math:`O(B^3)` booleans for triplets.

Notation (as in the book): for an anchor :math:`a`, a *positive* :math:`p` is
another item with the same label, a *negative* :math:`n` an item with a
different label; :math:`d_{ap} = d(a, p)` and :math:`d_{an} = d(a, n)`.
"""

from __future__ import annotations

import torch

from ._checks import check_labels, check_margin


def _check(dist: torch.Tensor, labels) -> torch.Tensor:
    if not isinstance(dist, torch.Tensor) or dist.dim() != 2:
        shape = tuple(dist.shape) if isinstance(dist, torch.Tensor) else type(dist)
        raise ValueError(f"dist must be a square 2-D tensor, got {shape}")
    if dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be square, got shape {tuple(dist.shape)}")
    if dist.shape[0] == 0:
        raise ValueError("dist must be non-empty, got an empty batch")
    return check_labels("labels", labels, dist.shape[0]).to(dist.device)


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks of positive and negative pairs.

    Returns
    -------
    pos_mask, neg_mask : Tensor of bool, shape (B, B)
        ``pos_mask[i, j]`` is True when ``i != j`` and ``labels[i] == labels[j]``;
        ``neg_mask[i, j]`` is True when ``labels[i] != labels[j]``.
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """Boolean mask of all valid triplets.

    Returns
    -------
    Tensor of bool, shape (B, B, B)
        ``mask[a, p, n]`` is True when ``p`` is a positive and ``n`` a negative
        of anchor ``a``.
    """
    pos_mask, neg_mask = pair_masks(labels)
    return pos_mask[:, :, None] & neg_mask[:, None, :]


def batch_hard(dist: torch.Tensor, labels) -> tuple[torch.Tensor, ...]:
    r"""Hardest positive and hardest negative of every anchor (Hermans et al. 2017).

    For anchor :math:`a`: :math:`p^* = \arg\max_{p} d_{ap}` over its positives
    and :math:`n^* = \arg\min_{n} d_{an}` over its negatives. Anchors without a
    positive or without a negative are dropped.

    Returns
    -------
    anchor, positive, negative : Tensor of int64, shape (T,)
        Indices of the selected triplets, one per usable anchor.
    """
    labels = _check(dist, labels)
    pos_mask, neg_mask = pair_masks(labels)
    d = dist.detach()
    d_ap, hardest_pos = torch.where(pos_mask, d, -torch.inf).max(dim=1)
    d_an, hardest_neg = torch.where(neg_mask, d, torch.inf).min(dim=1)
    # an anchor without a positive (negative) keeps -inf (inf) as its hardest distance
    anchor = torch.nonzero(torch.isfinite(d_ap) & torch.isfinite(d_an)).flatten()
    return anchor, hardest_pos[anchor], hardest_neg[anchor]


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(anchor, positive)`` of every ordered positive pair of the batch."""
    pos_mask, _ = pair_masks(labels)
    return torch.nonzero(pos_mask, as_tuple=True)


def semi_hard(dist: torch.Tensor, labels, margin: float) -> tuple[torch.Tensor, ...]:
    r"""Semi-hard negative for every positive pair (Schroff et al. 2015, FaceNet).

    A negative is semi-hard for the pair :math:`(a, p)` when it is farther than
    the positive but still inside the margin:
    :math:`d_{ap} < d_{an} < d_{ap} + m`. Of those, the closest one is chosen.
    Pairs with no semi-hard negative are dropped.

    Works on the (positive pair × candidate) table, of size
    :math:`B(K-1) \times B` for a P×K batch, rather than the full :math:`B^3` cube.

    Returns
    -------
    anchor, positive, negative : Tensor of int64, shape (T,)
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


def hard_pairs(dist: torch.Tensor, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard pairs: each anchor's farthest positive and closest negative.

    Returns
    -------
    pos_mask, neg_mask : Tensor of bool, shape (B, B)
        Symmetric masks of the selected positive and negative pairs.
    """
    anchor, positive, negative = batch_hard(dist, labels)
    pos_mask = torch.zeros_like(dist, dtype=torch.bool)
    neg_mask = torch.zeros_like(dist, dtype=torch.bool)
    pos_mask[anchor, positive] = True
    neg_mask[anchor, negative] = True
    return pos_mask | pos_mask.T, neg_mask | neg_mask.T

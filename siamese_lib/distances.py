r"""Distances between embeddings, row by row or all against all.

Four metrics, all with finite gradients everywhere (also where two points
coincide, where :math:`\sqrt{\cdot}` has an infinite slope):

========================  ==========================================================
``"euclidean"``           :math:`d(u, v) = \lVert u - v \rVert_2`
``"sqeuclidean"``         :math:`d(u, v) = \lVert u - v \rVert_2^2`
``"manhattan"``           :math:`d(u, v) = \lVert u - v \rVert_1 = \sum_k |u_k - v_k|`
``"cosine"``              :math:`d(u, v) = 1 - \frac{u^\top v}{\lVert u\rVert\,\lVert v\rVert}`
========================  ==========================================================
"""

from __future__ import annotations

import torch

from . import _checks
from ._checks import (
    check_choice,
    check_embeddings,
    check_metric,
    check_number,
    check_same_dim,
    check_same_shape,
)

__all__ = ["METRICS", "paired_distance", "distance_matrix", "safe_sqrt", "sphere_separation"]

#: The distances every ``metric=`` argument of the library accepts.
METRICS = _checks.METRICS

_NORM_EPS = 1e-12


def safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    r"""Square root whose gradient at 0 is 0 instead of infinite.

    :math:`\frac{d}{ds}\sqrt{s} = \frac{1}{2\sqrt{s}}` is infinite at
    :math:`s = 0`, and ``0 * inf`` in the chain rule gives NaN. Where
    ``sq == 0`` we take the square root of 1 and discard it, so the value is 0
    and no gradient flows through that entry (a valid subgradient of the
    Euclidean norm at 0).

    Parameters
    ----------
    sq : Tensor
        Non-negative values, e.g. squared distances.

    Returns
    -------
    Tensor
        :math:`\sqrt{s}`, with a zero gradient where :math:`s = 0`.

    Examples
    --------
    >>> import torch
    >>> s = torch.tensor([0.0, 4.0], requires_grad=True)
    >>> safe_sqrt(s).sum().backward()
    >>> s.grad
    tensor([0.0000, 0.2500])
    """
    positive = sq > 0
    root = torch.sqrt(torch.where(positive, sq, torch.ones_like(sq)))
    return torch.where(positive, root, torch.zeros_like(sq))


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    norm = safe_sqrt((x * x).sum(dim=1, keepdim=True)).clamp_min(_NORM_EPS)
    return x / norm


def paired_distance(x1: torch.Tensor, x2: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    r"""Distance between row ``i`` of ``x1`` and row ``i`` of ``x2``.

    Parameters
    ----------
    x1, x2 : Tensor, shape (B, D)
        Two batches of embeddings with the same shape.
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d` (see the module docstring).

    Returns
    -------
    Tensor, shape (B,)
        :math:`d(x_{1,i}, x_{2,i})` for every row ``i``; never negative.

    Examples
    --------
    >>> import torch
    >>> paired_distance(torch.tensor([[0., 0.]]), torch.tensor([[3., 4.]]))
    tensor([5.])
    >>> paired_distance(torch.tensor([[0., 0.]]), torch.tensor([[3., 4.]]), "manhattan")
    tensor([7.])
    """
    check_embeddings("x1", x1)
    check_embeddings("x2", x2)
    check_same_shape("x1", x1, "x2", x2)
    return _paired(x1, x2, check_metric(metric))


def _paired(x1: torch.Tensor, x2: torch.Tensor, metric: str) -> torch.Tensor:
    """:func:`paired_distance` without the input checks, for callers that made them already."""
    if metric == "cosine":
        return (1 - (_unit_rows(x1) * _unit_rows(x2)).sum(dim=1)).clamp(0, 2)
    diff = x1 - x2
    if metric == "manhattan":
        return diff.abs().sum(dim=1)
    sq = (diff * diff).sum(dim=1)
    return sq if metric == "sqeuclidean" else safe_sqrt(sq)


def distance_matrix(x: torch.Tensor, y: torch.Tensor | None = None,
                    metric: str = "euclidean") -> torch.Tensor:
    r"""All pairwise distances between the rows of ``x`` and the rows of ``y``.

    The squared Euclidean matrix uses the expansion
    :math:`\lVert u - v\rVert^2 = \lVert u\rVert^2 + \lVert v\rVert^2 - 2u^\top v`
    (one matrix product, :math:`O(B^2 D)`), clamped at 0 because round-off can
    make it slightly negative; the Manhattan matrix uses ``torch.cdist(p=1)``,
    which never builds a :math:`B \times C \times D` tensor. With ``y=None``
    the diagonal is exactly 0.

    Parameters
    ----------
    x : Tensor, shape (B, D)
        Embeddings.
    y : Tensor, shape (C, D), optional
        Defaults to ``x`` (all pairs within one batch).
    metric : {"euclidean", "sqeuclidean", "manhattan", "cosine"}
        The distance :math:`d`.

    Returns
    -------
    Tensor, shape (B, C)
        Entry ``[i, j]`` is :math:`d(x_i, y_j)`.

    Examples
    --------
    >>> import torch
    >>> distance_matrix(torch.tensor([[0., 0.], [3., 4.]]))
    tensor([[0., 5.],
            [5., 0.]])
    """
    check_embeddings("x", x)
    if y is not None:
        check_embeddings("y", y)
        check_same_dim("x", x, "y", y)
    return _pairwise(x, y, check_metric(metric))


def _pairwise(x: torch.Tensor, y: torch.Tensor | None, metric: str) -> torch.Tensor:
    """:func:`distance_matrix` without the input checks, for callers that made them already."""
    same = y is None
    y = x if same else y
    if metric == "cosine":
        dist = (1 - _unit_rows(x) @ _unit_rows(y).T).clamp(0, 2)
    elif metric == "manhattan":
        dist = torch.cdist(x, y, p=1)
    else:
        sq_x = (x * x).sum(dim=1)
        sq_y = sq_x if same else (y * y).sum(dim=1)
        dist = (sq_x[:, None] + sq_y[None, :] - 2 * x @ y.T).clamp_min(0)
        if metric == "euclidean":
            dist = safe_sqrt(dist)
    if same:  # round-off leaves tiny non-zero values where the exact answer is 0
        eye = torch.eye(dist.shape[0], dtype=torch.bool, device=dist.device)
        dist = dist.masked_fill(eye, 0)
    return dist


def sphere_separation(metric: str, n_points: int) -> float:
    r"""The largest distance that ``n_points`` points on the unit sphere can all keep from each other.

    The best arrangement is a regular simplex (possible in ``n_points - 1``
    or more dimensions), whose points have the inner product
    :math:`-1/(n-1)` with each other, so

    .. math::

        d_{\text{euclidean}} = \sqrt{\tfrac{2n}{n-1}}, \quad
        d_{\text{sqeuclidean}} = \tfrac{2n}{n-1}, \quad
        d_{\text{cosine}} = \tfrac{n}{n-1}.

    For ten classes the Euclidean bound is 1.49; a margin above it can never
    be met by every pair of classes of L2-normalised embeddings.

    Parameters
    ----------
    metric : {"euclidean", "sqeuclidean", "cosine"}
        The distance (the Manhattan bound depends on the orientation).
    n_points : int
        Number of points (classes), at least 2.

    Returns
    -------
    float

    Examples
    --------
    >>> round(sphere_separation("euclidean", 10), 4)
    1.4907
    >>> sphere_separation("cosine", 2)
    2.0
    """
    check_choice("metric", metric, ("euclidean", "sqeuclidean", "cosine"))
    n = check_number("n_points", n_points, low=2, integer=True)
    cosine = n / (n - 1)
    return {"cosine": cosine, "sqeuclidean": 2 * cosine, "euclidean": (2 * cosine) ** 0.5}[metric]

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

import math

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
    :math:`s = \lVert u - v\rVert^2 = \lVert u\rVert^2 + \lVert v\rVert^2 - 2u^\top v`
    (one matrix product, :math:`O(B^2 D)`). Its round-off is a fraction of
    :math:`\lVert u\rVert^2 + \lVert v\rVert^2`, not of :math:`s`: two identical
    rows of norm 56 come out :math:`10^{-3}` to :math:`10^{-2}` apart in float32
    (depending on how the matrix product sums), and close rows get their
    distance wrong by as much. So every entry with
    :math:`s < \tau\,(\lVert u\rVert^2 + \lVert v\rVert^2)`, where
    :math:`\tau = 8192\,\varepsilon` (:math:`\varepsilon` the machine epsilon
    of the dtype: :math:`\tau \approx 10^{-3}` in float32,
    :math:`1.8 \cdot 10^{-12}` in float64), is recomputed directly as
    :math:`\sum_k (u_k - v_k)^2` from the two rows; gradients flow through the
    recomputed entries too. Identical rows then give exactly 0. The entries
    kept from the expansion have a relative error of typically at most
    :math:`\sqrt{D}\,\varepsilon / \tau \approx 10^{-3} \sqrt{D / 64}`
    (:math:`D\,\varepsilon / \tau` at worst), reached just above the threshold
    and far less for pairs further apart. Entries are never negative. The
    Euclidean matrix is the square root of this one. The Manhattan matrix uses
    ``torch.cdist(p=1)``, which never builds a :math:`B \times C \times D`
    tensor. With ``y=None`` the diagonal is exactly 0.

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

    Identical rows are exactly 0 apart, whatever their norm (the expansion
    alone leaves round-off of order :math:`10^{-3}` here):

    >>> x = 10 * torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    >>> distance_matrix(x, x.clone(), "sqeuclidean").diagonal()
    tensor([0., 0., 0., 0.])
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
        dist = _squared_euclidean(x, y, same)
        if metric == "euclidean":
            dist = safe_sqrt(dist)
    if same:  # round-off leaves tiny non-zero values where the exact answer is 0
        eye = torch.eye(dist.shape[0], dtype=torch.bool, device=dist.device)
        dist = dist.masked_fill(eye, 0)
    return dist


#: Entries of the expansion below this many machine epsilons times ``|u|^2 + |v|^2`` are recomputed.
#: The expansion's round-off is about sqrt(D) epsilons of ``|u|^2 + |v|^2`` (D epsilons at worst),
#: so the entries it keeps have a relative error of about sqrt(D) / 8192, 1e-3 for D = 64.
_CANCELLATION = 8192

#: Recomputed entries are done this many elements of ``u - v`` at a time, to bound the memory.
_EXACT_CHUNK = 1 << 22


def _without_sync(x: torch.Tensor, y: torch.Tensor) -> bool:
    """On an accelerator, a batch-sized matrix is fixed without ``nonzero`` (which waits for the device)."""
    return x.device.type != "cpu" and x.shape[0] * y.shape[0] * x.shape[1] <= _EXACT_CHUNK


def _squared_euclidean(x: torch.Tensor, y: torch.Tensor, same: bool) -> torch.Tensor:
    """All squared Euclidean distances, by the Gram expansion where it is accurate, exactly elsewhere."""
    sq_x = (x * x).sum(dim=1)
    sq_y = sq_x if same else (y * y).sum(dim=1)
    norms = sq_x[:, None] + sq_y[None, :]
    dist = torch.addmm(norms, x, y.T, alpha=-2)
    with torch.no_grad():
        unresolved = dist < (_CANCELLATION * torch.finfo(dist.dtype).eps) * norms
        if same:
            unresolved.fill_diagonal_(False)  # set to 0 by the caller
        if _without_sync(x, y):
            rows = None
        else:
            rows, cols = unresolved.nonzero(as_tuple=True)
    if rows is None:  # a batch: the same exact values for every entry, kept where needed
        return torch.where(unresolved, ((x[:, None, :] - y[None, :, :]) ** 2).sum(dim=2), dist)
    if len(rows):
        step = max(1, _EXACT_CHUNK // x.shape[1])
        exact = torch.cat([((x[rows[k:k + step]] - y[cols[k:k + step]]) ** 2).sum(dim=1)
                           for k in range(0, len(rows), step)])
        dist = dist.index_put((rows, cols), exact)
    return dist  # never negative off the diagonal: such entries were recomputed


def sphere_separation(metric: str, n_points: int, dim: int | None = None) -> float:
    r"""The largest distance that ``n_points`` points on the unit sphere of :math:`\mathbb{R}^D` can all keep.

    That is :math:`\max \min_{i \ne j} d(u_i, u_j)` over unit vectors
    :math:`u_1, \dots, u_n \in \mathbb{R}^D` (:math:`D` = ``dim``), or, in the
    one case where it is not known in closed form, an upper bound on it. On the
    unit sphere :math:`d_{\text{sqeuclidean}} = d_{\text{euclidean}}^2` and
    :math:`d_{\text{cosine}} = d_{\text{euclidean}}^2 / 2`.

    * ``dim=None`` or :math:`D \ge n - 1`: the regular simplex, whose points
      have the inner product :math:`-1/(n-1)` with each other, so

      .. math::

          d_{\text{euclidean}} = \sqrt{\tfrac{2n}{n-1}}, \quad
          d_{\text{sqeuclidean}} = \tfrac{2n}{n-1}, \quad
          d_{\text{cosine}} = \tfrac{n}{n-1}.

      No :math:`n` unit vectors do better in any dimension (their sum has a
      non-negative squared norm), and this value is exact, reached only with
      :math:`D \ge n - 1` (a simplex of :math:`n` points spans
      :math:`n - 1` dimensions); ``dim=None`` assumes that.
    * :math:`D = 1`, :math:`n \ge 3`: 0 (the only unit "vectors" are
      :math:`\pm 1`, so two of the points coincide). Exact.
    * :math:`D = 2`: the regular polygon, :math:`d_{\text{euclidean}} = 2\sin(\pi/n)`.
      Exact: ten points on a circle are at most :math:`2\sin(\pi/10) \approx 0.618`
      apart, against 1.49 for the simplex in nine or more dimensions.
    * :math:`D \ge 3`, :math:`n \ge D + 2`: Rankin's bound
      :math:`d_{\text{sqeuclidean}} = 2` (Euclidean :math:`\sqrt2`,
      cosine 1: two of the points make an angle of at most 90°). Exact when
      :math:`n \le 2D` (the cross-polytope :math:`\pm e_i` reaches it);
      for :math:`n > 2D` only an upper bound, and the true value is smaller.

    For ten classes the Euclidean value is 1.49 with 9 or more dimensions; a
    margin above it can never be met by every pair of classes of
    L2-normalised embeddings.

    Parameters
    ----------
    metric : {"euclidean", "sqeuclidean", "cosine"}
        The distance (the Manhattan bound depends on the orientation).
    n_points : int
        Number of points (classes), at least 2.
    dim : int, optional
        Embedding dimension :math:`D`, at least 1. ``None`` (the default)
        places no limit: the regular simplex value.

    Returns
    -------
    float
        The largest achievable minimum distance, exact except for
        :math:`D \ge 3` and :math:`n > 2D`, where it is Rankin's upper bound.

    Examples
    --------
    >>> round(sphere_separation("euclidean", 10), 4)
    1.4907
    >>> sphere_separation("cosine", 2)
    2.0
    >>> round(sphere_separation("euclidean", 10, dim=2), 3)  # ten points on a circle
    0.618
    >>> sphere_separation("sqeuclidean", 6, dim=3)  # the octahedron
    2.0
    """
    check_choice("metric", metric, ("euclidean", "sqeuclidean", "cosine"))
    n = check_number("n_points", n_points, low=2, integer=True)
    if dim is not None:
        dim = check_number("dim", dim, low=1, integer=True)
    if dim is None or dim >= n - 1:
        sq = 2 * (n / (n - 1))  # regular simplex
    elif dim == 1:
        sq = 0.0  # n >= 3 points on {-1, +1}
    elif dim == 2:
        side = 2 * math.sin(math.pi / n)  # regular polygon
        return {"cosine": side**2 / 2, "sqeuclidean": side**2, "euclidean": side}[metric]
    else:
        sq = 2.0  # Rankin: among n >= dim + 2 points two are at most orthogonal
    return {"cosine": sq / 2, "sqeuclidean": sq, "euclidean": math.sqrt(sq)}[metric]

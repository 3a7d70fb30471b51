"""distances: against explicit formulas, finite gradients everywhere, bad input."""

import itertools
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siamese_lib import distances
from siamese_lib._checks import METRICS


def reference(u, v, metric):
    """One pair, written out from the formula with plain Python loops."""
    diff = [a - b for a, b in zip(u.tolist(), v.tolist())]
    if metric == "euclidean":
        return sum(d * d for d in diff) ** 0.5
    if metric == "sqeuclidean":
        return sum(d * d for d in diff)
    if metric == "manhattan":
        return sum(abs(d) for d in diff)
    dot = sum(a * b for a, b in zip(u.tolist(), v.tolist()))
    return 1 - dot / (sum(a * a for a in u.tolist()) ** 0.5 * sum(b * b for b in v.tolist()) ** 0.5)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_paired_and_matrix_match_the_formula(metric, dtype):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=g, dtype=dtype), torch.randn(4, 3, generator=g, dtype=dtype)
    tol = dict(rel=1e-4, abs=1e-5) if dtype == torch.float32 else dict(rel=1e-9, abs=1e-10)
    paired = distances.paired_distance(x[:4], y, metric)
    for i in range(4):
        assert paired[i].item() == pytest.approx(reference(x[i], y[i], metric), **tol)
    matrix = distances.distance_matrix(x, y, metric)
    for i, j in itertools.product(range(5), range(4)):
        assert matrix[i, j].item() == pytest.approx(reference(x[i], y[j], metric), **tol)
    assert matrix.dtype == dtype


def test_against_torch_references():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    torch.testing.assert_close(distances.paired_distance(x, y), F.pairwise_distance(x, y, eps=0))
    torch.testing.assert_close(distances.distance_matrix(x, y), torch.cdist(x, y), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(distances.paired_distance(x, y, "cosine"), 1 - F.cosine_similarity(x, y))


@pytest.mark.parametrize("metric", METRICS)
def test_large_norms_and_duplicates_match_a_float64_reference(metric):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 8, generator=g) * 1e3  # large norms make the expansion's round-off visible
    dup = torch.cat([x, x])  # coinciding rows off the diagonal too
    d = distances.distance_matrix(dup, metric=metric)
    assert torch.all(d.diagonal() == 0)
    for i, j in itertools.product(range(len(dup)), repeat=2):
        expected = 0.0 if i % len(x) == j % len(x) else reference(dup[i], dup[j], metric)
        if metric == "cosine":  # 1 - cos keeps an absolute round-off of a few float32 epsilons
            assert d[i, j].item() == pytest.approx(expected, rel=1e-4, abs=1e-6), (i, j)
        else:  # duplicates exactly 0, the rest to float32 accuracy
            assert d[i, j].item() == pytest.approx(expected, rel=1e-5, abs=0), (i, j)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_identical_rows_are_exactly_zero_apart(metric):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 32, generator=g) * 10  # norms about 56
    x[1], x[5] = x[0], x[9]
    d = distances.distance_matrix(x, metric=metric)
    assert d[0, 1] == 0 and d[1, 0] == 0 and d[5, 9] == 0 and d[9, 5] == 0
    d = distances.distance_matrix(x, x.clone(), metric=metric)
    assert torch.all(d.diagonal() == 0)
    assert d[0, 1] == 0 and d[1, 0] == 0 and d[5, 9] == 0 and d[9, 5] == 0


def test_close_rows_keep_their_relative_accuracy_and_gradient():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 32, generator=g) * 10  # norms about 56
    y = x + 1e-3 * torch.randn(8, 32, generator=g)  # each row of y 0.006 from its row of x
    for metric in ("sqeuclidean", "euclidean"):
        for d, left, right in [(distances.distance_matrix(x, y, metric), x, y),
                               (distances.distance_matrix(torch.cat([x, y]), metric=metric)[:8, 8:], x, y)]:
            for i, j in itertools.product(range(8), repeat=2):
                expected = reference(left[i], right[j], metric)  # float64, from the stored float32 values
                assert abs(d[i, j].item() - expected) < 1e-3 * expected, (metric, i, j)
    # the gradient flows through the recomputed entries: d/dx_i |x_i - y_i|^2 = 2 (x_i - y_i)
    z = x.clone().requires_grad_(True)
    distances.distance_matrix(z, y, "sqeuclidean").diagonal().sum().backward()
    for i in range(8):
        expected = [2 * (a - b) for a, b in zip(x[i].tolist(), y[i].tolist())]
        error = sum((a - b) ** 2 for a, b in zip(z.grad[i].tolist(), expected)) ** 0.5
        assert error < 1e-3 * sum(e * e for e in expected) ** 0.5, i


@pytest.mark.parametrize("metric", METRICS)
def test_gradients_are_finite_where_points_coincide(metric):
    x = torch.randn(4, 3, requires_grad=True)
    distances.distance_matrix(torch.cat([x, x]), metric=metric).sum().backward()
    assert torch.isfinite(x.grad).all()
    x.grad = None
    distances.paired_distance(x, x.detach().clone(), metric).sum().backward()
    assert torch.isfinite(x.grad).all()
    zero = torch.zeros(2, 3, requires_grad=True)
    distances.paired_distance(zero, torch.zeros(2, 3), metric).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_euclidean_gradient_is_the_unit_vector():
    u = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 4, dtype=torch.float64)
    distances.paired_distance(u, v).sum().backward()
    expected = (u - v) / (u - v).norm(dim=1, keepdim=True)
    torch.testing.assert_close(u.grad, expected.detach())


@pytest.mark.parametrize("metric", METRICS)
def test_gradcheck(metric):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: distances.distance_matrix(a, b, metric), (x, y))
    assert torch.autograd.gradcheck(lambda a, b: distances.paired_distance(a, b, metric), (x[:3], y))


@pytest.mark.parametrize(
    "x1, x2, metric, message",
    [
        (torch.randn(3), torch.randn(3), "euclidean", "x1 must be 2-D"),
        (torch.randn(3, 2), torch.randn(4, 2), "euclidean", "same shape"),
        (torch.randn(0, 2), torch.randn(0, 2), "euclidean", "non-empty"),
        (torch.tensor([[float("nan"), 1.0]]), torch.randn(1, 2), "euclidean", "finite"),
        (torch.randn(2, 2), torch.randn(2, 2), "chebyshev", "metric must be one of"),
        ([[1.0, 2.0]], torch.randn(1, 2), "euclidean", "torch.Tensor"),
        (torch.ones(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long), "euclidean", "floating"),
    ],
)
def test_bad_input(x1, x2, metric, message):
    with pytest.raises(ValueError, match=message):
        distances.paired_distance(x1, x2, metric)


def test_matrix_bad_input():
    with pytest.raises(ValueError, match="same embedding dimension"):
        distances.distance_matrix(torch.randn(3, 2), torch.randn(3, 4))
    with pytest.raises(ValueError, match="y must be 2-D"):
        distances.distance_matrix(torch.randn(3, 2), torch.randn(2))


def _min_pairwise(points, metric):
    """Smallest distance between two of ``points`` (unit vectors as lists), by a double loop."""
    best = float("inf")
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            sq = sum((a - b) ** 2 for a, b in zip(points[i], points[j]))
            dot = sum(a * b for a, b in zip(points[i], points[j]))
            best = min(best, {"euclidean": sq ** 0.5, "sqeuclidean": sq, "cosine": 1 - dot}[metric])
    return best


def _simplex(n, dim):
    """n unit vectors in R^dim (dim >= n - 1) with equal pairwise distances.

    e_1 .. e_{n-1} and a (1, ..., 1) with a = (1 - sqrt(n)) / (n - 1) are all sqrt(2) apart;
    moving their centroid to 0 and scaling each to norm 1 keeps the distances equal.
    """
    m = n - 1
    a = (1 - n**0.5) / m
    vertices = [[1.0 if k == i else 0.0 for k in range(m)] for i in range(m)] + [[a] * m]
    centroid = [sum(v[k] for v in vertices) / n for k in range(m)]
    centred = [[v[k] - centroid[k] for k in range(m)] for v in vertices]
    unit = [[c / sum(e * e for e in v) ** 0.5 for c in v] for v in centred]
    return [v + [0.0] * (dim - m) for v in unit]


SPHERE_METRICS = ["euclidean", "sqeuclidean", "cosine"]


@pytest.mark.parametrize("metric", SPHERE_METRICS)
def test_sphere_separation_is_reached_by_the_regular_simplex(metric):
    for n in range(2, 9):
        for dim in (n - 1, n + 2):
            points = _simplex(n, dim)
            assert all(abs(sum(c * c for c in p) - 1) < 1e-12 for p in points)
            expected = _min_pairwise(points, metric)
            assert distances.sphere_separation(metric, n, dim=dim) == pytest.approx(expected, rel=1e-12)
            assert distances.sphere_separation(metric, n) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("metric", SPHERE_METRICS)
def test_sphere_separation_in_two_dimensions_is_the_regular_polygon(metric):
    for n in range(2, 13):
        polygon = [[math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)] for k in range(n)]
        expected = _min_pairwise(polygon, metric)
        assert distances.sphere_separation(metric, n, dim=2) == pytest.approx(expected, rel=1e-12), n
    assert distances.sphere_separation("euclidean", 10, dim=2) == pytest.approx(0.618, abs=1e-3)


@pytest.mark.parametrize("metric", SPHERE_METRICS)
def test_sphere_separation_beyond_the_simplex_is_the_cross_polytope(metric):
    for dim in range(3, 6):
        cross = []
        for i in range(dim):
            for sign in (1.0, -1.0):
                cross.append([sign if k == i else 0.0 for k in range(dim)])
        for n in range(dim + 2, 2 * dim + 1):  # the first n vertices of the cross-polytope
            expected = _min_pairwise(cross[:n], metric)
            assert distances.sphere_separation(metric, n, dim=dim) == pytest.approx(expected, rel=1e-12)


def test_sphere_separation_on_a_line():
    assert distances.sphere_separation("euclidean", 2, dim=1) == _min_pairwise([[1.0], [-1.0]], "euclidean")
    for n in range(3, 6):  # only +1 and -1 exist: two points coincide
        points = [[(-1.0) ** k] for k in range(n)]
        assert distances.sphere_separation("euclidean", n, dim=1) == _min_pairwise(points, "euclidean") == 0


@pytest.mark.parametrize("metric", SPHERE_METRICS)
def test_random_points_on_the_sphere_never_beat_sphere_separation(metric):
    rng = np.random.default_rng(0)
    for dim in range(1, 6):
        for n in range(2, 14):
            bound = distances.sphere_separation(metric, n, dim=dim)
            points = rng.normal(size=(500, n, dim))
            points /= np.linalg.norm(points, axis=2, keepdims=True)
            sq = ((points[:, :, None, :] - points[:, None, :, :]) ** 2).sum(axis=3)
            sq[:, np.arange(n), np.arange(n)] = np.inf
            best_sq = sq.min(axis=(1, 2)).max()
            best = {"euclidean": best_sq ** 0.5, "sqeuclidean": best_sq, "cosine": best_sq / 2}[metric]
            assert best <= bound + 1e-12, (dim, n, best, bound)


@pytest.mark.parametrize("dim", [0, -3, 2.5, np.float64(3.0), "3", True])
def test_sphere_separation_bad_dim(dim):
    with pytest.raises(ValueError, match=f"dim must be an integer >= 1, got {re.escape(repr(dim))}"):
        distances.sphere_separation("euclidean", 5, dim=dim)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean"])
def test_the_accelerator_path_without_host_sync_gives_the_same_values_and_gradients(metric, monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(12, 8) * 20
    x[3] = x[0]
    x[5] = x[1] + 1e-3
    y = x.flip(0).clone()

    def values_and_grads():
        a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
        d = distances.distance_matrix(a, b, metric)
        (d * torch.arange(d.numel()).reshape(d.shape)).sum().backward()
        return d.detach(), a.grad, b.grad

    synced = values_and_grads()
    monkeypatch.setattr(distances, "_without_sync", lambda x, y: True)
    for got, expected in zip(values_and_grads(), synced):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)

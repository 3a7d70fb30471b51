"""distances: against explicit formulas, finite gradients everywhere, bad input."""

import itertools

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
def test_self_distance_is_exactly_zero_and_never_negative(metric):
    x = torch.randn(50, 8) * 1e3  # large norms make the expansion's round-off visible
    d = distances.distance_matrix(x, metric=metric)
    assert torch.all(d.diagonal() == 0)
    assert torch.all(d >= 0)
    dup = torch.cat([x, x])  # coinciding rows off the diagonal too
    assert torch.all(distances.distance_matrix(dup, metric=metric) >= 0)


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

"""Every public computation on every available device, in float32 and float64.

The CPU always runs; CUDA and MPS cases run where such a device exists and are
skipped (not silently dropped) elsewhere. The losses must agree with
hand-written float64 loops; the other computations with the CPU's.
"""

import pytest
import torch

from siamese_lib import distances, evaluation, experiments, mining, online_losses, transforms
from siamese_lib.losses import contrastive_loss, triplet_loss


def _available(name: str) -> bool:
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return True


DEVICES = [pytest.param(name, marks=pytest.mark.skipif(not _available(name), reason=f"no {name} device"))
           for name in ("cpu", "cuda", "mps")]


def _dtypes(device):
    return [torch.float32] if device == "mps" else [torch.float32, torch.float64]  # MPS has no float64


def _batch(device, dtype, n=24, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.arange(n) % 4
    return x.to(device, dtype), labels.to(device), x, torch.arange(n) % 4


def _close(on_device, on_cpu, dtype):
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(on_device.detach().cpu().double(), on_cpu.detach().double(),
                               atol=tol, rtol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_distances_and_mining(device):
    for dtype in _dtypes(device):
        x, labels, x_cpu, labels_cpu = _batch(device, dtype)
        for metric in distances.METRICS:
            dist = distances.distance_matrix(x, metric=metric)
            assert dist.device.type == device and dist.dtype == dtype
            _close(dist, distances.distance_matrix(x_cpu, metric=metric), dtype)
            _close(distances.paired_distance(x[:12], x[12:], metric),
                   distances.paired_distance(x_cpu[:12], x_cpu[12:], metric), dtype)
        dist, dist_cpu = distances.distance_matrix(x), distances.distance_matrix(x_cpu)
        for got, expected in zip(mining.batch_hard(dist, labels), mining.batch_hard(dist_cpu, labels_cpu)):
            assert torch.equal(got.cpu(), expected)
        got = mining.semi_hard(dist, labels, 1.0)
        assert got[0].device.type == device


# ---- the losses against hand-written float64 loops ---------------------------------------
# Each reference below loops over the pairs, triplets or anchors of a batch and computes every
# distance row by row with plain arithmetic, in float64 on the CPU; it shares no code with the
# library. Its gradient is autograd's through that loop.

CONTRASTIVE_MARGIN, TRIPLET_MARGIN = 3.5, 2.0  # each leaves some terms of the batch active, not all


def _hinge(v):
    return v if v > 0 else v * 0


def _distances(z, squared):
    """d[i][j] for every pair of rows of ``z``, each summed over coordinates by hand."""
    n = len(z)
    d = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            s = ((z[i] - z[j]) ** 2).sum() if i != j else z[i].sum() * 0
            d[i][j] = s if squared or i == j else s.sqrt()
    return d


def _mean(terms, nonzero=False):
    if nonzero:
        terms = [t for t in terms if t > 0]
    return sum(terms) / len(terms) if terms else 0.0


def _active(terms):
    """Some, but not all, terms are positive: the margin matters in this batch."""
    assert 0 < sum(t > 0 for t in terms) < len(terms)
    return terms


# pair i: rows i and SECOND[i]; with labels i % 4, the even pairs are positive and the odd ones negative
SECOND = [12 + (i if i % 2 == 0 else (i + 2) % 12) for i in range(12)]


def loop_contrastive(z, labels):
    """Pairs (i, SECOND[i]); y = 1 when their labels agree; Euclidean distance."""
    terms, negatives = [], []
    for i, j in enumerate(SECOND):
        d = ((z[i] - z[j]) ** 2).sum().sqrt()
        terms.append(d**2 if labels[i] == labels[j] else _hinge(CONTRASTIVE_MARGIN - d) ** 2)
        if labels[i] != labels[j]:
            negatives.append(terms[-1])
    _active(negatives)
    assert len(negatives) < len(terms)
    return _mean(terms)


def loop_triplet(z, labels):
    """Rows i, 8 + i and 16 + i form triplet i; squared Euclidean distance."""
    terms = []
    for i in range(8):
        d_ap = ((z[i] - z[8 + i]) ** 2).sum()
        d_an = ((z[i] - z[16 + i]) ** 2).sum()
        terms.append(_hinge(d_ap - d_an + TRIPLET_MARGIN))
    return _mean(_active(terms))


def loop_batch_all(z, labels):
    d, n = _distances(z, squared=True), len(z)
    terms = [_hinge(d[a][p] - d[a][q] + TRIPLET_MARGIN)
             for a in range(n) for p in range(n) for q in range(n)
             if p != a and labels[p] == labels[a] and labels[q] != labels[a]]
    return _mean(_active(terms), nonzero=True)


def loop_batch_hard(z, labels):
    d, n = _distances(z, squared=True), len(z)
    terms = []
    for a in range(n):
        positives = [p for p in range(n) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(n) if labels[q] != labels[a]]
        p = max(positives, key=lambda p: d[a][p].item())
        q = min(negatives, key=lambda q: d[a][q].item())
        terms.append(_hinge(d[a][p] - d[a][q] + TRIPLET_MARGIN))
    return _mean(terms)


def loop_semi_hard(z, labels):
    d, n = _distances(z, squared=True), len(z)
    terms = []
    for a in range(n):
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            semi = [q for q in range(n) if labels[q] != labels[a]
                    and d[a][p].item() < d[a][q].item() < d[a][p].item() + TRIPLET_MARGIN]
            if semi:
                q = min(semi, key=lambda q: d[a][q].item())
                terms.append(d[a][p] - d[a][q] + TRIPLET_MARGIN)
    assert terms
    return _mean(terms)


def loop_online_contrastive(z, labels):
    d, n = _distances(z, squared=False), len(z)
    terms = [d[i][j] ** 2 if labels[i] == labels[j] else _hinge(CONTRASTIVE_MARGIN - d[i][j]) ** 2
             for i in range(n) for j in range(i + 1, n)]
    return _mean(terms)


LOSSES = {
    "contrastive": (lambda z, lab: contrastive_loss(z[:12], z[SECOND], (lab[:12] == lab[SECOND]).long(),
                                                    CONTRASTIVE_MARGIN), loop_contrastive),
    "triplet": (lambda z, lab: triplet_loss(z[:8], z[8:16], z[16:], TRIPLET_MARGIN), loop_triplet),
    "batch_all": (lambda z, lab: online_losses.batch_all_triplet_loss(z, lab, TRIPLET_MARGIN),
                  loop_batch_all),
    "batch_hard": (lambda z, lab: online_losses.batch_hard_triplet_loss(z, lab, TRIPLET_MARGIN),
                   loop_batch_hard),
    "semi_hard": (lambda z, lab: online_losses.semi_hard_triplet_loss(z, lab, TRIPLET_MARGIN),
                  loop_semi_hard),
    "online_contrastive": (lambda z, lab: online_losses.online_contrastive_loss(z, lab, CONTRASTIVE_MARGIN),
                           loop_online_contrastive),
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("device", DEVICES)
def test_losses_forward_and_backward_match_loops(device, name):
    loss_fn, loop = LOSSES[name]
    x, labels, x_cpu, labels_cpu = _batch(device, torch.float64 if device != "mps" else torch.float32)
    z_ref = x_cpu.clone().requires_grad_(True)
    expected = loop(z_ref, labels_cpu.tolist())
    expected.backward()
    for dtype in _dtypes(device):
        z = x.to(dtype).clone().requires_grad_(True)
        loss = loss_fn(z, labels)
        assert loss.device.type == device and loss.dtype == dtype
        _close(loss, expected, dtype)
        loss.backward()
        _close(z.grad, z_ref.grad, dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_augmentation_is_the_same_on_every_device(device):
    for dtype in _dtypes(device):
        g = torch.Generator().manual_seed(0)
        x_cpu = torch.randn(6, 1, 28, 28, generator=g, dtype=dtype)
        augment = transforms.RandomAffine()
        out = augment(x_cpu.to(device), generator=torch.Generator().manual_seed(1))
        assert out.device.type == device and out.dtype == dtype
        _close(out, augment(x_cpu, generator=torch.Generator().manual_seed(1)), dtype)
        moved = transforms.affine(x_cpu.to(device), torch.zeros(6), torch.ones(6), torch.zeros(6, 2))
        _close(moved, x_cpu, torch.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation(device):
    for dtype in _dtypes(device):
        x, labels, x_cpu, labels_cpu = _batch(device, dtype, n=40)
        got = evaluation.retrieval_metrics(x, labels)
        assert got == pytest.approx(evaluation.retrieval_metrics(x_cpu, labels_cpu))
        pairs = torch.tensor([[0, 4, 1], [1, 2, 0], [3, 7, 1]])
        d, y = evaluation.pair_distances(x, pairs)
        d_cpu, _ = evaluation.pair_distances(x_cpu, pairs)
        assert d == pytest.approx(d_cpu, abs=1e-5) and y.tolist() == [1, 0, 1]


@pytest.mark.parametrize("device", DEVICES)
def test_a_short_run_is_reproducible_on_its_device(device, small_mnist):
    runs = [experiments.run("triplet", epochs=1, seed=5, data=small_mnist, device=device) for _ in range(2)]
    assert next(runs[0].model.parameters()).device.type == device
    assert runs[0].metrics == runs[1].metrics
    for p, q in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(p, q)

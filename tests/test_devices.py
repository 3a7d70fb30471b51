"""Every public computation on every available device, in float32 and float64.

The CPU always runs; CUDA and MPS cases run where such a device exists and are
skipped (not silently dropped) elsewhere. Results must agree with the CPU's.
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


@pytest.mark.parametrize("device", DEVICES)
def test_losses_forward_and_backward(device):
    for dtype in _dtypes(device):
        x, labels, x_cpu, labels_cpu = _batch(device, dtype)
        checks = {
            "contrastive": lambda z, lab: contrastive_loss(z[:12], z[12:], (lab[:12] == lab[12:]).long()),
            "triplet": lambda z, lab: triplet_loss(z[:8], z[8:16], z[16:], 2.0),
            "batch_all": lambda z, lab: online_losses.batch_all_triplet_loss(z, lab, 2.0),
            "batch_hard": lambda z, lab: online_losses.batch_hard_triplet_loss(z, lab, 2.0),
            "semi_hard": lambda z, lab: online_losses.semi_hard_triplet_loss(z, lab, 2.0),
            "online_contrastive": lambda z, lab: online_losses.online_contrastive_loss(z, lab),
        }
        for name, loss_fn in checks.items():
            z = x.clone().requires_grad_(True)
            z_cpu = x_cpu.clone().requires_grad_(True)
            loss, loss_cpu = loss_fn(z, labels), loss_fn(z_cpu, labels_cpu)
            assert loss.device.type == device, name
            _close(loss, loss_cpu, dtype)
            loss.backward()
            loss_cpu.backward()
            _close(z.grad, z_cpu.grad, dtype)


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

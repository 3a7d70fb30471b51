"""sampling: pairs, triplets and P×K batches; one dataset serving them; the loader."""

import numpy as np
import pytest
import torch

from siamese_lib import data, sampling


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist("embedded")


def test_pairs_are_balanced_correct_and_seeded(mnist):
    pairs = sampling.make_pairs(mnist.test.labels, n_pairs=1000, seed=5)
    i, j, y = pairs.unbind(1)
    assert y.sum().item() == 500
    labels = mnist.test.labels
    assert torch.equal((labels[i] == labels[j]).long(), y)
    assert not (i == j).any()
    assert torch.equal(sampling.make_pairs(labels, 1000, seed=5), pairs)
    assert not torch.equal(sampling.make_pairs(labels, 1000, seed=6), pairs)
    with pytest.raises(ValueError, match="n_pairs must be an integer >= 1, got 0"):
        sampling.make_pairs(labels, 0, seed=0)


def test_triplets(mnist):
    triplets = sampling.make_triplets(mnist.val.labels, n_triplets=300, seed=0)
    a, p, n = triplets.unbind(1)
    labels = mnist.val.labels
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all() and (a != p).all()
    assert torch.equal(sampling.make_triplets(labels, 300, seed=0), triplets)


def test_negative_classes_are_uniform(mnist):
    pairs = sampling.make_pairs(mnist.train.labels.numpy(), 20000, seed=0)
    neg = pairs[pairs[:, 2] == 0]
    combos = mnist.train.labels[neg[:, 0]] * 10 + mnist.train.labels[neg[:, 1]]
    counts = torch.bincount(combos, minlength=100).reshape(10, 10)
    off_diagonal = counts[~torch.eye(10, dtype=torch.bool)].float()
    assert off_diagonal.min() > 0.6 * off_diagonal.mean()


def test_one_dataset_serves_images_pairs_and_triplets(mnist):
    dataset = sampling.ImageDataset(mnist.val)
    labels = mnist.val.labels
    (x,), (y,) = dataset[torch.tensor([3, 1, 4])]
    assert x.shape == (3, 1, 28, 28) and y.tolist() == labels[[3, 1, 4]].tolist()
    assert torch.equal(x[1], dataset.x[1])
    pairs = sampling.make_pairs(labels, 6, seed=0)
    (x1, x2), (same,) = dataset[pairs[:, :2]]
    assert x1.shape == x2.shape == (6, 1, 28, 28)
    assert torch.equal(same, pairs[:, 2])  # y recomputed from the labels agrees with make_pairs
    assert torch.equal(x2[0], dataset.x[pairs[0, 1]])
    triplet = sampling.make_triplets(labels, 2, seed=0)
    (a, p, n), extra = dataset[triplet]
    assert extra == () and torch.equal(n[1], dataset.x[triplet[1, 2]])
    with pytest.raises(ValueError, match=r"index must have shape \(b,\), \(b, 2\) or \(b, 3\)"):
        dataset[torch.zeros(2, 4, dtype=torch.long)]


def test_samplers_draw_new_examples_every_pass_and_repeat_with_the_seed(mnist):
    labels = mnist.train.labels.numpy()
    for make in (lambda s: sampling.PairSampler(labels, 64, seed=s),
                 lambda s: sampling.TripletSampler(labels, 42, seed=s)):
        sampler = make(0)
        first, second = [torch.cat(list(sampler)) for _ in range(2)]
        assert not torch.equal(first, second)  # new pairs / triplets each epoch
        again = make(0)
        assert torch.equal(torch.cat(list(again)), first) and torch.equal(torch.cat(list(again)), second)
    pairs = sampling.PairSampler(labels, 64, seed=0)
    assert len(pairs) == len(list(pairs)) == -(-1750 // 64)  # half as many pairs as images
    triplets = sampling.TripletSampler(labels, 42, n_triplets=100, seed=0)
    assert [len(b) for b in triplets] == [42, 42, 16]


def test_pk_sampler(mnist):
    sampler = sampling.PKSampler(mnist.train.labels.numpy(), p=8, k=4, seed=0)
    assert len(sampler) == 3500 // 32
    labels = mnist.train.labels
    for batch in sampler:
        assert len(batch) == 32 and len(set(batch.tolist())) == 32
        counts = torch.bincount(labels[batch], minlength=10)
        assert sorted(counts[counts > 0].tolist()) == [4] * 8  # positives for every anchor
    first = [b.tolist() for b in sampling.PKSampler(labels.numpy(), 8, 4, seed=1)]
    assert first == [b.tolist() for b in sampling.PKSampler(labels.numpy(), 8, 4, seed=1)]


def test_pk_sampler_errors():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"classes \[1\] have fewer than k=3"):
        sampling.PKSampler(labels, p=2, k=3)
    with pytest.raises(ValueError, match=r"p must be an integer in \[2, 3\], got 4"):
        sampling.PKSampler(labels, p=4, k=2)
    with pytest.raises(ValueError, match="k must be an integer >= 2, got 1"):
        sampling.PKSampler(labels, p=2, k=1)


def test_loader_batches(mnist):
    dataset = sampling.ImageDataset(mnist.val)
    batches = list(sampling.loader(dataset, 128, seed=0))
    assert [len(b[1][0]) for b in batches] == [128, 128, 128, 116]
    again = list(sampling.loader(dataset, 128, seed=0))
    assert all(torch.equal(a[1][0], b[1][0]) for a, b in zip(batches, again))
    pairs = list(sampling.loader(dataset, sampler=sampling.PairSampler(mnist.val.labels, 100)))
    assert [len(y) for _, (y,) in pairs] == [100, 100, 50]
    with pytest.raises(ValueError, match="batch_size or sampler"):
        sampling.loader(dataset)


def test_a_batched_transform_runs_once_per_batch_with_the_datasets_generator(mnist):
    calls = []

    def per_image(x):
        calls.append(tuple(x.shape))
        return x

    class PerBatch:
        batched = True

        def __call__(self, x, generator):
            calls.append((tuple(x.shape), generator))
            return x

    index = torch.arange(5)
    sampling.ImageDataset(mnist.val, per_image)[index]
    assert calls == [(1, 28, 28)] * 5
    calls.clear()
    dataset = sampling.ImageDataset(mnist.val, PerBatch())
    dataset[torch.stack([index, index + 5], 1)]
    assert calls == [((10, 1, 28, 28), dataset.generator)]  # both sides of five pairs, one call


def test_augmentation_is_reproducible_from_the_dataset_seed(mnist):
    from siamese_lib.transforms import RandomAffine

    index = torch.arange(8)
    first = sampling.ImageDataset(mnist.val, RandomAffine(), seed=3)[index][0][0]
    torch.manual_seed(123)  # the global generator plays no part
    again = sampling.ImageDataset(mnist.val, RandomAffine(), seed=3)[index][0][0]
    other = sampling.ImageDataset(mnist.val, RandomAffine(), seed=4)[index][0][0]
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("make, name", [
    (lambda n: sampling.PairSampler([0, 0, 1, 1], 2, n_pairs=n), "n_pairs"),
    (lambda n: sampling.TripletSampler([0, 0, 1, 1], 2, n_triplets=n), "n_triplets"),
    (lambda n: sampling.PKSampler([0, 0, 1, 1], 2, 2, n_batches=n), "n_batches"),
])
def test_a_count_of_zero_or_less_is_an_error_not_the_default(make, name):
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= 1, got {bad}"):
            make(bad)
    assert len(list(make(5))) >= 1 and len(list(make(None))) >= 1

"""data: the embedded subset, its split, the full-MNIST path on tiny IDX files, pairs, triplets, P×K."""

import gzip
import struct
import urllib.error

import numpy as np
import pytest
import torch

from siamese_lib import data


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist("embedded")


def test_embedded_split(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (3500, 500, 1000)
    for split, per_class in ((mnist.train, 350), (mnist.val, 50), (mnist.test, 100)):
        assert split.images.shape[1:] == (28, 28) and split.images.dtype == torch.uint8
        assert torch.bincount(split.labels).tolist() == [per_class] * 10
    # no image is in two splits
    rows = {s: {img.numpy().tobytes() for img in getattr(mnist, s).images}
            for s in ("train", "val", "test")}
    assert not rows["train"] & rows["test"]
    assert not rows["train"] & rows["val"] and not rows["val"] & rows["test"]
    again = data.load_mnist("embedded")
    assert torch.equal(again.test.images, mnist.test.images)


def test_corrupt_and_missing_embedded_file(tmp_path):
    images, labels = data.read_embedded()
    table = np.concatenate([images.reshape(len(images), -1), labels[:, None]], axis=1).astype(int)
    table[0, 300] = (table[0, 300] + 1) % 256  # one pixel changed
    path = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, table, fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match="corrupt: checksum"):
        data.read_embedded(path)
    path.write_bytes(b"not a gzip file")
    with pytest.raises(ValueError, match="corrupt"):
        data.read_embedded(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        data.read_embedded(tmp_path / "missing.csv.gz")


def write_idx(folder, prefix, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{prefix}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def test_full_mnist_path_reads_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    train_labels = np.repeat(np.arange(10), 24)
    test_labels = np.repeat(np.arange(10), 3)
    train_images = rng.integers(0, 256, (len(train_labels), 28, 28), dtype=np.uint8)
    test_images = rng.integers(0, 256, (len(test_labels), 28, 28), dtype=np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", train_images, train_labels)
    write_idx(raw, "t10k", test_images, test_labels)
    monkeypatch.setenv("SIAMESE_MNIST", "full")
    mnist = data.load_mnist(root=tmp_path)
    assert mnist.source == "full"
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (220, 20, 30)
    assert torch.bincount(mnist.val.labels).tolist() == [2] * 10
    assert torch.equal(mnist.test.images, torch.from_numpy(test_images))
    # every training image ends up in exactly one of train / val
    together = torch.cat([mnist.train.images, mnist.val.images]).reshape(len(train_images), -1)
    expected = train_images.reshape(len(train_images), -1)
    assert sorted(map(bytes, together.numpy())) == sorted(map(bytes, expected))


def test_full_mnist_offline_names_the_embedded_default(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(RuntimeError, match="embedded default"):
        data.load_mnist("full", root=tmp_path)


def test_unknown_source(monkeypatch):
    with pytest.raises(ValueError, match="source must be one of"):
        data.load_mnist("fashion")
    monkeypatch.setenv("SIAMESE_MNIST", "kmnist")
    with pytest.raises(ValueError, match="'kmnist'"):
        data.load_mnist()


def test_preprocess():
    images = torch.tensor([[[0] * 28] * 28, [[255] * 28] * 28], dtype=torch.uint8)
    x = data.preprocess(images)
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    assert x[0].unique().item() == pytest.approx(data.BACKGROUND)
    assert x[1].unique().item() == pytest.approx((1 - data.MNIST_MEAN) / data.MNIST_STD)
    with pytest.raises(ValueError, match="uint8"):
        data.preprocess(images.float())
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        data.preprocess(images[0])


def test_pairs_are_balanced_correct_and_seeded(mnist):
    pairs = data.PairDataset(mnist.test, n_pairs=1000, seed=5)
    i, j, y = pairs.pairs.unbind(1)
    assert y.sum().item() == 500
    labels = mnist.test.labels
    assert torch.equal((labels[i] == labels[j]).long(), y)
    assert not (i == j).any()
    assert torch.equal(data.PairDataset(mnist.test, 1000, seed=5).pairs, pairs.pairs)
    assert not torch.equal(data.PairDataset(mnist.test, 1000, seed=6).pairs, pairs.pairs)
    (x1, x2), (yy,) = pairs[torch.arange(4)]
    assert x1.shape == (4, 1, 28, 28) and torch.equal(yy, y[:4])
    (x1, x2), (yy,) = pairs[0]
    assert x1.shape == (1, 28, 28)


def test_triplets(mnist):
    triplets = data.TripletDataset(mnist.val, n_triplets=300, seed=0)
    a, p, n = triplets.triplets.unbind(1)
    labels = mnist.val.labels
    assert (labels[a] == labels[p]).all() and (labels[a] != labels[n]).all() and (a != p).all()
    assert torch.equal(data.TripletDataset(mnist.val, 300, seed=0).triplets, triplets.triplets)
    (xa, xp, xn), extra = triplets[torch.arange(3)]
    assert xa.shape == (3, 1, 28, 28) and extra == ()


def test_negative_classes_are_uniform(mnist):
    pairs = data.make_pairs(mnist.train.labels.numpy(), 20000, seed=0)
    neg = pairs[pairs[:, 2] == 0]
    combos = mnist.train.labels[neg[:, 0]] * 10 + mnist.train.labels[neg[:, 1]]
    counts = torch.bincount(combos, minlength=100).reshape(10, 10)
    off_diagonal = counts[~torch.eye(10, dtype=torch.bool)].float()
    assert off_diagonal.min() > 0.6 * off_diagonal.mean()


def test_pk_sampler(mnist):
    sampler = data.PKSampler(mnist.train.labels.numpy(), p=8, k=4, seed=0)
    assert len(sampler) == 3500 // 32
    labels = mnist.train.labels
    for batch in sampler:
        assert len(batch) == 32 and len(set(batch.tolist())) == 32
        counts = torch.bincount(labels[batch], minlength=10)
        assert sorted(counts[counts > 0].tolist()) == [4] * 8  # positives for every anchor
    first = [b.tolist() for b in data.PKSampler(labels.numpy(), 8, 4, seed=1)]
    assert first == [b.tolist() for b in data.PKSampler(labels.numpy(), 8, 4, seed=1)]


def test_pk_sampler_errors():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"classes \[1\] have fewer than k=3"):
        data.PKSampler(labels, p=2, k=3)
    with pytest.raises(ValueError, match="p must be between 2 and the number of classes"):
        data.PKSampler(labels, p=4, k=2)
    with pytest.raises(ValueError, match="k must be >= 2"):
        data.PKSampler(labels, p=2, k=1)


def test_class_filter(mnist):
    low = mnist.train.subset(range(5))
    assert set(low.labels.tolist()) == {0, 1, 2, 3, 4} and len(low) == 1750
    with pytest.raises(ValueError, match="classes must name labels"):
        mnist.train.subset([42])


def test_loader_batches(mnist):
    pairs = data.PairDataset(mnist.val, 100, seed=0)
    batches = list(data.loader(pairs, 32, seed=0))
    assert [len(b[1][0]) for b in batches] == [32, 32, 32, 4]
    again = list(data.loader(pairs, 32, seed=0))
    assert all(torch.equal(a[1][0], b[1][0]) for a, b in zip(batches, again))
    with pytest.raises(ValueError, match="batch_size or sampler"):
        data.loader(pairs)


def _digits(mnist, n=4):
    return data.preprocess(mnist.train.images[:n])


def test_affine_identity_rotation_and_shifts_move_pixels_exactly(mnist):
    x = _digits(mnist)
    n = len(x)
    none, ones = torch.zeros(n), torch.ones(n)
    torch.testing.assert_close(data.affine(x, none, ones, torch.zeros(n, 2)), x, atol=1e-4, rtol=0)
    # a quarter turn maps pixel centres onto pixel centres: exactly torch.rot90, counter-clockwise
    quarter = data.affine(x, torch.full((n,), torch.pi / 2), ones, torch.zeros(n, 2))
    torch.testing.assert_close(quarter, torch.rot90(x, 1, (2, 3)), atol=1e-4, rtol=0)
    # whole-pixel shifts: right by 3, down by 2, with background coming in
    moved = data.affine(x, none, ones, torch.tensor([[3 / 28, 2 / 28]] * n))
    expected = torch.full_like(x, data.BACKGROUND)
    expected[..., 2:, 3:] = x[..., :-2, :-3]
    torch.testing.assert_close(moved, expected, atol=1e-4, rtol=0)
    # zooming out by 2 keeps the centre pixel and fills the border with background
    small = data.affine(x, none, 0.5 * ones, torch.zeros(n, 2))
    assert torch.allclose(small[..., :6, :], torch.tensor(data.BACKGROUND))


def test_random_affine_is_per_image_seeded_and_checked(mnist):
    x = _digits(mnist, 1).repeat(8, 1, 1, 1)  # eight copies of one image
    augment = data.RandomAffine(degrees=15, translate=0.1, scale=(0.9, 1.1))
    torch.manual_seed(0)
    out = augment(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert len({tuple(img.flatten()[::7].tolist()) for img in out}) == 8  # each copy moved differently
    torch.manual_seed(0)
    assert torch.equal(augment(x), out)
    assert augment(x[0]).shape == x[0].shape  # one image (1, 28, 28) as well
    no_change = data.RandomAffine(degrees=0, translate=0, scale=(1, 1))
    torch.testing.assert_close(no_change(x), x, atol=1e-4, rtol=0)
    assert repr(augment) == "RandomAffine(degrees=15, translate=0.1, scale=(0.9, 1.1))"
    for kwargs, message in (({"degrees": -1}, "degrees must be"), ({"translate": 0.5}, "translate must be"),
                            ({"scale": (1.1, 0.9)}, "scale must be"), ({"scale": (0, 1)}, "scale must be")):
        with pytest.raises(ValueError, match=message):
            data.RandomAffine(**kwargs)
    with pytest.raises(ValueError, match="x must be a float tensor"):
        augment(mnist.train.images[:2])  # raw uint8 pixels, not preprocessed


def test_datasets_apply_a_batched_transform_once_per_batch(mnist):
    calls = []

    def per_image(x):
        calls.append(tuple(x.shape))
        return x

    class PerBatch:
        batched = True

        def __call__(self, x):
            calls.append(tuple(x.shape))
            return x

    index = torch.arange(5)
    data.ImageDataset(mnist.val, per_image)[index]
    assert calls == [(1, 28, 28)] * 5
    calls.clear()
    data.PairDataset(mnist.val, 10, transform=PerBatch())[index]
    assert calls == [(5, 1, 28, 28)] * 2

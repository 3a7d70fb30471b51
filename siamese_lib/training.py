"""A small, explicit training loop: device, determinism, progress, validation, early stopping, collapse.

What is reproducible, exactly:

* **Same seed, same machine, same thread count, CPU**: identical weights. Every
  random draw of a run has its own seeded generator (initial weights via
  :func:`seeded`, batches via the samplers, augmentation via the dataset),
  and :func:`fit` turns on ``torch.use_deterministic_algorithms``. The tests
  train twice and compare every weight bit for bit.
* **Another thread count or another CPU model**: slightly different numbers.
  Matrix products split their sums across threads and vector units, and
  floating-point addition is not associative, so the round-off differs and
  grows over training. The book's checks leave room for that.
* **CUDA**: the same seed on the same GPU model, driver and library versions
  gives identical weights: deterministic algorithms are enforced (an operation
  without a deterministic kernel raises instead of drifting; the library's own
  training path avoids them), cuDNN's benchmark mode is off while training,
  and deterministic cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG``, which
  :func:`fit` sets to ``":4096:8"`` when it is unset (cuBLAS reads it once,
  when it starts; if CUDA was used earlier in the process, :func:`fit` warns
  that it may be too late: set it before the first CUDA call). GPU numbers
  differ from CPU numbers.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_number, value_checks
from .distances import _pairwise

__all__ = ["fit", "History", "CollapseWarning", "seeded", "select_device"]

#: The cuBLAS workspace setting that makes its matrix products deterministic.
CUBLAS_WORKSPACE = ":4096:8"


class CollapseWarning(UserWarning):
    """The embeddings have collapsed towards a single point."""


def select_device(device=None) -> torch.device:
    """``device`` if given, else the first available of cuda, mps, cpu.

    Parameters
    ----------
    device : str or torch.device, optional
        Returned as a ``torch.device`` when given.

    Returns
    -------
    torch.device

    Examples
    --------
    >>> select_device("cpu")
    device(type='cpu')
    """
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def seeded(seed: int, device=None):
    """Run a block with PyTorch's generators seeded, and give the caller's state back afterwards.

    Inside the block ``torch.manual_seed(seed)`` holds (CPU and, if
    ``device`` is a CUDA device, that GPU); on leaving it, the global
    generators continue exactly where the caller left them.

    Parameters
    ----------
    seed : int
        The seed of the block.
    device : str or torch.device, optional
        A CUDA device whose generator is seeded (and restored) too.

    Examples
    --------
    >>> import torch
    >>> with seeded(0):
    ...     a = torch.rand(1)
    >>> with seeded(0):
    ...     b = torch.rand(1)
    >>> torch.equal(a, b)
    True
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def _deterministic_cublas(device: torch.device) -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` for a CUDA run if it is unset; warn if it may be too late.

    cuBLAS reads the variable when it creates its handle (the first matrix
    product on the device). PyTorch's deterministic mode checks it at every
    cuBLAS call and raises where it is unset, so it is always set here; if CUDA
    was used before, the handle may exist already, with the default workspace.
    """
    if device.type != "cuda" or os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
        return
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    if torch.cuda.is_initialized():
        warnings.warn("CUDA was used before fit without CUBLAS_WORKSPACE_CONFIG: cuBLAS may already "
                      "run with its default workspace and not be deterministic; set "
                      f"CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} before the first CUDA call of the "
                      "process", RuntimeWarning, stacklevel=3)


@contextlib.contextmanager
def _deterministic():
    """Deterministic algorithms on every device for the duration of the block."""
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


class History:
    """Per-epoch records of a training run.

    ``history["loss"]`` is the list of mean training losses, one per epoch;
    likewise ``"seconds"``, ``"spread"`` (mean distance between the
    embeddings of the last batch, in the loss's metric) and every validation
    metric, prefixed ``"val_"``. ``history.steps`` holds one record per
    optimizer step (``"epoch"``, ``"step"``, ``"loss"`` and ``"spread"`` of
    that step's batch), for looking inside an epoch.
    """

    def __init__(self):
        self.rows: list[dict] = []
        self.steps: list[dict] = []
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.collapsed = False

    def __getitem__(self, key: str) -> list:
        return [row[key] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def keys(self) -> list[str]:
        """The recorded columns."""
        return list(self.rows[0]) if self.rows else []

    def to_frame(self):
        """The history as a pandas DataFrame, one row per epoch."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("epoch")


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def fit(model: torch.nn.Module, batches, criterion, *, epochs: int = 10, lr: float = 1e-3,
        weight_decay: float = 0.0, validate=None, monitor: str | None = "precision_at_1",
        patience: int | None = None, seed: int = 0, device=None, progress: bool = True,
        collapse_ratio: float = 0.01) -> History:
    """Train ``model`` with AdamW and a cosine learning-rate schedule.

    Parameters
    ----------
    model : nn.Module
        Maps the batch inputs to embeddings, e.g. a
        :class:`~siamese_lib.models.SiameseNetwork` for pairs and triplets or
        an :class:`~siamese_lib.models.EmbeddingNet` for labelled batches.
    batches : iterable
        Yields ``(inputs, extra)`` tuples, as :func:`siamese_lib.sampling.loader`
        does; iterated once per epoch.
    criterion : callable
        ``criterion(*model(*inputs), *extra)`` is the loss, e.g.
        ``ContrastiveLoss()(z1, z2, y)`` or ``OnlineTripletLoss()(z, labels)``.
        Its ``margin`` and ``metric`` attributes, if any, set the scale and
        the units of the collapse check.
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
        Seeds PyTorch's generators for the duration of training (see
        :func:`seeded`): the caller's generators are left as they were.
        Deterministic algorithms are enforced on every device, so the same
        seed and batches give the same weights on the same device with the
        same thread count (see the module docstring for what is and is not
        reproducible).
    device : str or torch.device, optional
        Default: :func:`select_device`.
    progress : bool
        Report progress: a ``tqdm`` bar (a widget in Jupyter) updated once per
        epoch with the epoch's loss, or, when standard error is not a terminal
        (a log file), one line per epoch.
    collapse_ratio : float
        Warn with :class:`CollapseWarning` when the mean distance between
        embeddings falls below ``collapse_ratio * margin`` (both in the
        criterion's metric).

    Returns
    -------
    History
    """
    check_number("epochs", epochs, low=1, integer=True)
    if patience is not None and (monitor is None or validate is None):
        raise ValueError(f"patience needs validate and monitor, got validate={validate!r}, "
                         f"monitor={monitor!r}")
    device = select_device(device)
    _deterministic_cublas(device)
    # on an accelerator no input check reads a value each step; the losses are checked per epoch
    with seeded(seed, device), _deterministic(), value_checks(device.type == "cpu"):
        return _fit(model.to(device), batches, criterion, epochs, lr, weight_decay, validate,
                    monitor, patience, device, progress, collapse_ratio)


def _nan_advice(what: str, epoch: int, lr: float, step: int | None = None) -> FloatingPointError:
    where = f"epoch {epoch}" + ("" if step is None else f" (step {step})")
    return FloatingPointError(f"{what} at {where}; lower the learning rate (lr={lr}) "
                              "or check the inputs for NaN")


def _step(model, criterion, inputs, extra, device, epoch, lr):
    embeddings = _as_tuple(model(*(t.to(device) for t in inputs)))
    try:
        loss = criterion(*embeddings, *(t.to(device) for t in extra))
    except ValueError as err:
        if not all(torch.isfinite(z).all() for z in embeddings):
            raise _nan_advice("the embeddings are not finite", epoch, lr) from err
        raise
    return embeddings, loss


def _spread_tensor(embeddings: torch.Tensor, metric: str) -> torch.Tensor:
    """Mean distance between the first 256 embeddings of a batch, left on the device."""
    z = embeddings.detach()[:256].float()
    n = len(z)
    return _pairwise(z, None, metric).sum() / max(n * (n - 1), 1)


def _fit(model, batches, criterion, epochs, lr, weight_decay, validate, monitor, patience,
         device, progress, collapse_ratio):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    margin = getattr(criterion, "margin", 1.0)
    metric = getattr(criterion, "metric", "euclidean")
    history, best, best_state, waited = History(), -np.inf, None, 0
    bar = _Progress(epochs, progress)
    for epoch in range(1, epochs + 1):
        start, losses, spreads = time.perf_counter(), [], []
        model.train()
        for inputs, extra in batches:  # no host sync inside the epoch: records stay on the device
            embeddings, loss = _step(model, criterion, inputs, extra, device, epoch, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            spreads.append(_spread_tensor(torch.cat(embeddings), metric))
        if not losses:
            raise ValueError(f"batches must yield at least one batch per epoch, got none at epoch {epoch}")
        step_losses, step_spreads = torch.stack(losses).tolist(), torch.stack(spreads).tolist()
        bad = [i for i, v in enumerate(step_losses) if not np.isfinite(v)]
        if bad:
            raise _nan_advice(f"the loss is {step_losses[bad[0]]}", epoch, lr, step=bad[0] + 1)
        history.steps += [{"epoch": epoch, "step": i + 1, "loss": v, "spread": w}
                          for i, (v, w) in enumerate(zip(step_losses, step_spreads))]
        scheduler.step()  # once per epoch, after that epoch's optimizer steps
        row = {"epoch": epoch, "loss": sum(step_losses) / len(step_losses),
               "spread": step_spreads[-1],
               "seconds": time.perf_counter() - start}
        if validate is not None:
            row.update({f"val_{k}": v for k, v in validate(model).items()})
        history.rows.append(row)
        bar.epoch(row)
        _check_collapse(history, row, margin, metric, collapse_ratio)
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


def _in_jupyter() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class _Progress:
    """A progress bar where one can be drawn (a terminal, Jupyter), else one line per epoch."""

    def __init__(self, epochs: int, enabled: bool):
        self.epochs, self.enabled = epochs, enabled
        self.lines = enabled and not (sys.stderr.isatty() or _in_jupyter())
        self.bar = tqdm(total=epochs, desc="training", leave=False, mininterval=0.5,
                        disable=not enabled or self.lines)

    def epoch(self, row: dict) -> None:
        if self.lines:
            scores = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val_"))
            print(f"epoch {row['epoch']}/{self.epochs}: loss {row['loss']:.4f}"
                  + (f", {scores}" if scores else "") + f" ({row['seconds']:.1f} s)",
                  file=sys.stderr, flush=True)
        self.bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _check_collapse(history: History, row: dict, margin: float, metric: str, ratio: float) -> None:
    if history.collapsed or row["spread"] >= ratio * margin:
        return
    history.collapsed = True
    warnings.warn(
        f"embeddings collapsed at epoch {row['epoch']}: the mean {metric} distance between them "
        f"is {row['spread']:.2e}, against a margin of {margin:g}, and the loss is "
        f"{row['loss']:.4f} (a triplet loss pinned at the margin means d_ap = d_an). "
        "Try semi-hard or batch-all instead of batch-hard mining, a warm-up with an easier "
        "mining strategy, a lower learning rate, or another margin.",
        CollapseWarning, stacklevel=3)

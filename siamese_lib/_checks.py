"""Input checks shared by the modules: each raises ``ValueError`` naming the argument."""

from __future__ import annotations

import math

import torch

METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine")
REDUCTIONS = ("mean", "sum", "none")


def check_embeddings(name: str, x) -> torch.Tensor:
    """Return ``x`` if it is a finite, non-empty 2-D floating tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must be 2-D (batch, dim), got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return x


def check_same_shape(name1: str, x1: torch.Tensor, name2: str, x2: torch.Tensor):
    """Raise unless ``x1`` and ``x2`` have the same shape."""
    if x1.shape != x2.shape:
        raise ValueError(
            f"{name1} and {name2} must have the same shape, "
            f"got {tuple(x1.shape)} and {tuple(x2.shape)}"
        )


def check_same_dim(name1: str, x1: torch.Tensor, name2: str, x2: torch.Tensor):
    """Raise unless ``x1`` and ``x2`` have the same number of columns."""
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(
            f"{name1} and {name2} must have the same embedding dimension, "
            f"got {x1.shape[1]} and {x2.shape[1]}"
        )


def check_margin(margin) -> float:
    """Return ``margin`` as a float if it is a finite number > 0."""
    if isinstance(margin, bool) or not isinstance(margin, (int, float)):
        raise ValueError(f"margin must be a number > 0, got {margin!r}")
    if not math.isfinite(margin) or margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    return float(margin)


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_labels(name: str, labels, n: int, *, binary: bool = False) -> torch.Tensor:
    """Return ``labels`` as a 1-D tensor of length ``n``.

    With ``binary=True`` every value must be 0 or 1 (pair labels, 1 = same class).
    """
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(
            f"{name} must have one entry per row ({n}), got {labels.shape[0]}"
        )
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    if binary and not ((labels == 0) | (labels == 1)).all():
        bad = labels[(labels != 0) & (labels != 1)][0].item()
        raise ValueError(f"{name} must contain only 0 and 1 (1 = same class), got {bad}")
    return labels

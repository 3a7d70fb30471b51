"""Input checks shared by the modules: each raises ``ValueError`` naming the argument."""

from __future__ import annotations

import math

import torch

#: The distances of :mod:`siamese_lib.distances` (``metric=`` everywhere).
METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine")


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_number(name: str, value, *, low=None, high=None, low_open: bool = False,
                 high_open: bool = False, integer: bool = False):
    """Return ``value`` if it is a finite number (an int if ``integer``) inside the given range.

    ``low`` and ``high`` are inclusive bounds unless ``low_open`` / ``high_open``.
    """
    kind = "an integer" if integer else "a number"
    allowed = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed) or not math.isfinite(value):
        raise ValueError(f"{name} must be {kind}{_range_text(low, high, low_open, high_open)}, "
                         f"got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {kind}{_range_text(low, high, low_open, high_open)}, "
                         f"got {value!r}")
    return value if integer else float(value)


def _range_text(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def check_margin(margin) -> float:
    """Return ``margin`` as a float if it is a finite number > 0."""
    return check_number("margin", margin, low=0, low_open=True)


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is one of :data:`METRICS`."""
    return check_choice("metric", metric, METRICS)


def check_embeddings(name: str, x) -> torch.Tensor:
    """Return ``x`` if it is a finite, non-empty 2-D floating tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return x


def check_same_shape(name1: str, x1: torch.Tensor, name2: str, x2: torch.Tensor) -> None:
    """Raise unless ``x1`` and ``x2`` have the same shape."""
    if x1.shape != x2.shape:
        raise ValueError(f"{name1} and {name2} must have the same shape, "
                         f"got {tuple(x1.shape)} and {tuple(x2.shape)}")


def check_same_dim(name1: str, x1: torch.Tensor, name2: str, x2: torch.Tensor) -> None:
    """Raise unless ``x1`` and ``x2`` have the same number of columns."""
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"{name1} and {name2} must have the same embedding dimension, "
                         f"got {x1.shape[1]} and {x2.shape[1]}")


def check_labels(name: str, labels, n: int, *, binary: bool = False,
                 device: torch.device | None = None) -> torch.Tensor:
    """Return ``labels`` as a 1-D tensor of length ``n`` (on ``device`` if given).

    With ``binary=True`` every value must be 0 or 1 (pair labels, 1 = same class).
    """
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"{name} must have one entry per row ({n}), got {labels.shape[0]}")
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    if binary and not ((labels == 0) | (labels == 1)).all():
        bad = labels[(labels != 0) & (labels != 1)][0].item()
        raise ValueError(f"{name} must contain only 0 and 1 (1 = same class), got {bad}")
    return labels if device is None else labels.to(device)

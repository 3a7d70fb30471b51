"""Input checks shared by the modules: each raises ``ValueError`` naming the argument."""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers

import numpy as np
import torch

#: The distances of :mod:`siamese_lib.distances` (``metric=`` everywhere).
METRICS = ("euclidean", "sqeuclidean", "manhattan", "cosine")

_VALUE_CHECKS = contextvars.ContextVar("value_checks", default=True)


@contextlib.contextmanager
def value_checks(enabled: bool):
    """Turn the checks that read tensor values (finiteness, 0/1 labels) on or off inside the block.

    Reading a value makes the host wait for the device. The training loop turns
    them off on an accelerator and checks the loss of every step once per epoch
    instead; shapes, types and everything else are still checked.
    """
    token = _VALUE_CHECKS.set(enabled)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def checking_values() -> bool:
    """Whether the checks that read tensor values are on (see :func:`value_checks`)."""
    return _VALUE_CHECKS.get()


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_number(name: str, value, *, low=None, high=None, low_open: bool = False,
                 high_open: bool = False, integer: bool = False):
    """Return ``value`` as a plain ``int`` or ``float`` if it is a finite number inside the given range.

    Any real number is accepted: Python ``int`` and ``float``, NumPy scalars
    such as ``np.int64`` or ``np.float32``, and whatever else registers with
    :class:`numbers.Real` (``numbers.Integral`` with ``integer=True``), and
    one-element tensors holding such a number (an integer dtype where an
    integer is asked for); booleans are not.

    Parameters
    ----------
    name : str
        The argument's name, for the error message.
    value : object
        The value to check.
    low, high : float, optional
        Inclusive bounds, or exclusive ones with ``low_open`` / ``high_open``.
    low_open, high_open : bool
        Make the corresponding bound exclusive.
    integer : bool
        Require an integer, and return an ``int``; otherwise return a ``float``.

    Returns
    -------
    int or float

    Raises
    ------
    ValueError
        Naming ``name``, what it must be and the ``value`` it got.

    Examples
    --------
    >>> import numpy as np
    >>> check_number("k", np.int64(5), low=1, integer=True)
    5
    >>> check_number("margin", np.float32(0.5), low=0, low_open=True)
    0.5
    >>> import torch
    >>> check_number("epochs", torch.tensor(3), low=1, integer=True)
    3
    >>> check_number("k", 0, low=1, integer=True)
    Traceback (most recent call last):
    ...
    ValueError: k must be an integer >= 1, got 0
    """
    number = _as_number(value, integer)
    too_low = number is not None and low is not None and (number <= low if low_open else number < low)
    too_high = number is not None and high is not None and (number >= high if high_open else number > high)
    if number is None or too_low or too_high:
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}"
                         f"{_range_text(low, high, low_open, high_open)}, got {value!r}")
    return number


def _as_number(value, integer: bool):
    """``value`` as a finite ``int`` (``integer``) or ``float``, or None if it is not one."""
    if isinstance(value, torch.Tensor):  # a one-element tensor: its number (an int only if integral)
        if value.numel() != 1 or value.dtype == torch.bool or (integer and value.is_floating_point()):
            return None
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, numbers.Integral if integer else numbers.Real):
        return None
    if integer:
        return int(value)
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None


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
    if checking_values() and not torch.isfinite(x).all():
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
    if not checking_values():
        return labels if device is None else labels.to(device)
    if labels.is_floating_point() and not torch.isfinite(labels).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    if binary and not ((labels == 0) | (labels == 1)).all():
        bad = labels[(labels != 0) & (labels != 1)][0].item()
        raise ValueError(f"{name} must contain only 0 and 1 (1 = same class), got {bad}")
    return labels if device is None else labels.to(device)

r"""From raw MNIST pixels to model input, and the augmentation applied on the way.

:func:`preprocess` is the one place where raw uint8 images become model
input; :func:`affine` and :class:`RandomAffine` move, turn and zoom
preprocessed images, a whole batch in one call.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import check_number

__all__ = ["MNIST_MEAN", "MNIST_STD", "BACKGROUND", "preprocess", "affine", "RandomAffine"]

#: Mean and standard deviation of MNIST's pixels (scaled to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
#: Value of a black (0) pixel after :func:`preprocess`; the fill value for augmentations.
BACKGROUND = (0.0 - MNIST_MEAN) / MNIST_STD


def preprocess(images) -> torch.Tensor:
    r"""Turn raw uint8 images ``(N, 28, 28)`` into model input ``(N, 1, 28, 28)``.

    :math:`x = (\text{pixel}/255 - 0.1307) / 0.3081`, the usual MNIST
    mean and standard deviation. This is the only place where that happens.

    Parameters
    ----------
    images : Tensor or array of uint8, shape (N, 28, 28)
        Raw pixels, on any device.

    Returns
    -------
    Tensor of float32, shape (N, 1, 28, 28)
        On the device of ``images``.

    Examples
    --------
    >>> import torch
    >>> x = preprocess(torch.zeros(2, 28, 28, dtype=torch.uint8))
    >>> x.shape, round(x[0, 0, 0, 0].item(), 4) == round(BACKGROUND, 4)
    (torch.Size([2, 1, 28, 28]), True)
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (raw pixels), got dtype {images.dtype}")
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(f"images must have shape (N, 28, 28), got {tuple(images.shape)}")
    return ((images.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def affine(images: torch.Tensor, angle, scale, shift) -> torch.Tensor:
    r"""Rotate, scale and shift each image of a batch by its own amounts.

    The output pixel at :math:`p` (coordinates from the image centre, the width
    spanning 2) is the input at :math:`R_\theta(p - t)/s`, bilinearly
    interpolated; pixels from outside the image are background
    (:data:`BACKGROUND`). On screen (rows going down) a positive angle turns
    the digit counter-clockwise, a positive shift moves it right and down.

    Parameters
    ----------
    images : Tensor, shape (N, 1, H, W)
        Preprocessed images, on any device and of any floating dtype.
    angle : Tensor, shape (N,)
        :math:`\theta` in radians.
    scale : Tensor, shape (N,)
        Zoom factors :math:`s > 0`.
    shift : Tensor, shape (N, 2)
        :math:`t = (t_x, t_y)` as fractions of the width and height.

    Returns
    -------
    Tensor, shape (N, 1, H, W)
        The transformed images, on the device and in the dtype of ``images``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> same = affine(x, torch.zeros(1), torch.ones(1), torch.zeros(1, 2))
    >>> torch.allclose(same, x, atol=1e-5)
    True
    """
    angle, scale, shift = (torch.as_tensor(v).to(images) for v in (angle, scale, shift))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    offset = -(rotation @ (2 * shift).unsqueeze(2))
    theta = torch.cat([rotation, offset], 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - BACKGROUND, grid, align_corners=False) + BACKGROUND


class RandomAffine:
    r"""Data augmentation: a random :func:`affine` transformation of every image, each one different.

    Each image gets its own angle :math:`\theta \sim U(-\text{degrees}, \text{degrees})`,
    zoom :math:`s \sim U(\text{scale})` and shift
    :math:`t_x, t_y \sim U(-\text{translate}, \text{translate})`. A whole
    batch is transformed in one call of ``affine_grid`` and ``grid_sample``,
    well under a millisecond for 128 images on a CPU, where per-image
    transforms take longer than the training step itself.

    The random numbers come from ``generator`` if one is passed (the book's
    datasets pass their own seeded one, see
    :class:`~siamese_lib.sampling.ImageDataset`), else from PyTorch's global
    generator. They are drawn on the CPU, so the same generator gives the
    same transformations on every device.

    Parameters
    ----------
    degrees : float
        Largest rotation, in degrees, 0 ≤ degrees ≤ 180.
    translate : float
        Largest shift, as a fraction of the width, 0 ≤ translate < 0.5.
    scale : (float, float)
        Range of the zoom factor, 0 < low ≤ high.

    Examples
    --------
    >>> import torch
    >>> augment = RandomAffine(degrees=10)
    >>> x = torch.zeros(8, 1, 28, 28)
    >>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    >>> torch.equal(augment(x + 1, generator=g1), augment(x + 1, generator=g2))
    True
    """

    #: Datasets call it once per batch, not once per image.
    batched = True

    def __init__(self, degrees: float = 10.0, translate: float = 0.1,
                 scale: tuple[float, float] = (0.9, 1.1)):
        self.degrees = check_number("degrees", degrees, low=0, high=180)
        self.translate = check_number("translate", translate, low=0, high=0.5, high_open=True)
        if (not isinstance(scale, (tuple, list)) or len(scale) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
                or not 0 < scale[0] <= scale[1] < math.inf):
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale!r}")
        self.scale = (float(scale[0]), float(scale[1]))

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={self.degrees:g}, translate={self.translate:g}, "
                f"scale=({self.scale[0]:g}, {self.scale[1]:g}))")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment preprocessed images ``(N, 1, H, W)`` or one image ``(1, H, W)``."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() not in (3, 4):
            raise ValueError("x must be a float tensor of shape (N, 1, H, W) or (1, H, W) "
                             f"from preprocess, got {type(x).__name__} of shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        batch = x if x.dim() == 4 else x.unsqueeze(0)
        n = len(batch)
        u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
        angle = (2 * u[:, 0] - 1) * math.radians(self.degrees)
        zoom = self.scale[0] + u[:, 1] * (self.scale[1] - self.scale[0])
        shift = (2 * u[:, 2:] - 1) * self.translate
        out = affine(batch, angle, zoom, shift)
        return out if x.dim() == 4 else out[0]

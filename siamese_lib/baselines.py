"""Embeddings without metric learning: the yardsticks the two losses are measured against.

Three baselines answer three questions about a learned embedding:

* ``"pixels"``: the preprocessed image itself, flattened (784 numbers). How
  far does nearest-neighbour search get with no learning at all?
* ``"untrained"``: the :class:`~siamese_lib.models.EmbeddingNet` at its seeded
  initialisation. How much does the architecture alone give?
* ``"softmax"``: the same encoder trained as a classifier, with
  cross-entropy over the training classes, on the same batches, budget and
  augmentation as the losses; the embedding is the encoder's output, before
  the classifier head. Does metric learning beat the standard way of
  learning features?

:func:`siamese_lib.experiments.run` trains and measures all three like the
losses (``run("pixels")``), so every table can hold them side by side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_labels, checking_values

__all__ = ["BASELINES", "PixelEncoder", "SoftmaxClassifier"]

#: The baselines :func:`~siamese_lib.experiments.run` accepts as ``loss``.
BASELINES = ("pixels", "untrained", "softmax")


class PixelEncoder(nn.Module):
    """The identity embedding: a preprocessed image ``(N, 1, 28, 28)`` flattened to ``(N, 784)``.

    It has no weights.

    Parameters
    ----------
    normalize : bool
        If True, every flattened image is scaled to unit length.

    Examples
    --------
    >>> import torch
    >>> PixelEncoder()(torch.ones(2, 1, 28, 28)).shape
    torch.Size([2, 784])
    """

    def __init__(self, normalize: bool = False):
        super().__init__()
        self.normalize = normalize
        self.embedding_dim = 28 * 28
        # no parameters: this buffer tells :func:`~siamese_lib.models.embed` the device
        self.register_buffer("device_marker", torch.zeros(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten each image (and L2-normalise it if ``normalize``)."""
        z = x.flatten(start_dim=1)
        return F.normalize(z, dim=1) if self.normalize else z


class SoftmaxClassifier(nn.Module):
    r"""An encoder followed by a linear classifier over ``classes``, trained with cross-entropy.

    ``model(x)`` returns the logits; ``model.loss(logits, labels)`` is the mean
    cross-entropy, with the labels (digits) mapped to their position in
    ``classes``. After training, ``model.encoder`` is the embedding.

    Parameters
    ----------
    encoder : nn.Module
        Maps preprocessed images to ``(N, encoder.embedding_dim)``.
    classes : sequence of int
        The training classes, in any order.

    Examples
    --------
    >>> import torch
    >>> from siamese_lib.models import EmbeddingNet
    >>> model = SoftmaxClassifier(EmbeddingNet(embedding_dim=4), classes=[3, 5, 7])
    >>> logits = model(torch.zeros(2, 1, 28, 28))
    >>> logits.shape, model.loss(logits, torch.tensor([5, 7])).shape
    (torch.Size([2, 3]), torch.Size([]))
    """

    def __init__(self, encoder: nn.Module, classes):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("classes", torch.as_tensor(sorted(int(c) for c in classes)))
        self.head = nn.Linear(encoder.embedding_dim, len(self.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of every training class."""
        return self.head(self.encoder(x))

    def loss(self, logits: torch.Tensor, labels) -> torch.Tensor:
        """Mean cross-entropy of ``logits`` against digit ``labels`` (each one of ``classes``)."""
        labels = check_labels("labels", labels, len(logits), device=logits.device)
        index = torch.searchsorted(self.classes, labels)
        known = (index < len(self.classes)) & (self.classes[index.clamp(max=len(self.classes) - 1)] == labels)
        if checking_values() and not known.all():
            raise ValueError(f"labels must be among the classifier's classes {self.classes.tolist()}, "
                             f"got {sorted(set(labels[~known].tolist()))}")
        return F.cross_entropy(logits, index)

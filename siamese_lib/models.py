"""The embedding network, the Siamese wrapper that shares it between branches, and checkpoints."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_number
from .transforms import preprocess

__all__ = ["EmbeddingNet", "SiameseNetwork", "embed", "save_checkpoint", "load_checkpoint"]


class EmbeddingNet(nn.Module):
    r"""A small CNN :math:`f_\theta` that maps a 28×28 image to a vector in :math:`\mathbb{R}^D`.

    A 5×5 and a 3×3 convolution (16 and 32 channels), each followed by
    max-pooling, batch normalisation and a ReLU, then two fully connected
    layers: about 110 thousand parameters and under a million multiply-adds per
    image, several thousand training images per second on two CPU cores.
    Batch normalisation (applied after pooling, where it is four times
    cheaper) makes training faster and more stable; in training mode it uses
    the statistics of the batch, in eval mode fixed running averages, so an
    evaluated image's embedding never depends on the rest of its batch.

    Parameters
    ----------
    embedding_dim : int
        :math:`D`, the size of the embedding.
    normalize : bool
        If True, embeddings are L2-normalised: :math:`f(x) / \lVert f(x)\rVert`,
        so they lie on the unit sphere and Euclidean distances are in [0, 2].

    Examples
    --------
    >>> import torch
    >>> net = EmbeddingNet(embedding_dim=8, normalize=True).eval()
    >>> z = net(torch.zeros(3, 1, 28, 28))
    >>> z.shape, torch.allclose(z.norm(dim=1), torch.ones(3))
    (torch.Size([3, 8]), True)
    """

    def __init__(self, embedding_dim: int = 32, normalize: bool = False):
        super().__init__()
        self.embedding_dim = check_number("embedding_dim", embedding_dim, low=1, integer=True)
        self.normalize = normalize
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5), nn.MaxPool2d(2), nn.BatchNorm2d(16), nn.ReLU(),  # 16×12×12
            nn.Conv2d(16, 32, kernel_size=3), nn.MaxPool2d(2), nn.BatchNorm2d(32), nn.ReLU(),  # 32×5×5
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(32 * 5 * 5, 128), nn.ReLU(),
                                  nn.Linear(128, embedding_dim))
        # channels-last convolutions and pooling are about 1.6x faster on a CPU
        self.features.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed preprocessed images ``(N, 1, 28, 28)`` into ``(N, embedding_dim)``."""
        z = self.head(self.features(x.contiguous(memory_format=torch.channels_last)))
        return F.normalize(z, dim=1) if self.normalize else z


class SiameseNetwork(nn.Module):
    r"""One encoder applied to every input: the branches share their weights.

    ``net(x1, x2)`` returns ``(f(x1), f(x2))`` and ``net(a, p, n)`` returns
    three embeddings. Weight sharing means that every branch is the same
    module with the same parameters (the convolution and linear weights, and
    batch normalisation's scale and shift), so the branches compute one
    function :math:`f_\theta` and :math:`\theta` receives the sum of the
    gradients of all branches.

    Batch normalisation also holds buffers, which are not parameters: its
    running mean and variance. How they are updated is a separate choice,
    and this wrapper makes it by encoding the concatenated inputs in one
    batched forward pass. In training mode each batch-norm layer therefore
    normalises every branch with one mean and variance, computed over all
    branches together (2B images for B pairs, 3B for B triplets), and updates
    its running statistics once per step, from that joint batch. So within a
    step an image is normalised the same way whichever branch it is in:
    swapping ``x1`` and ``x2`` swaps the outputs, and an image fed to two
    branches gets one embedding (both up to floating-point round-off). One
    call per branch would instead normalise each branch with the statistics
    of its own inputs, so the branches would compute different functions
    during training (the anchors, positives and negatives of triplets would
    each be normalised their own way), and it would update the running
    statistics once per branch per step. The joint pass is also one forward
    pass instead of two or three.

    In eval mode batch normalisation uses the running statistics and no batch
    statistics, so the one pass gives the result of one call per branch (up
    to floating-point round-off).

    Parameters
    ----------
    encoder : nn.Module
        The shared encoder :math:`f_\theta`, e.g. an :class:`EmbeddingNet`;
        it maps a batch of images to a batch of embeddings.

    Examples
    --------
    >>> import torch
    >>> net = SiameseNetwork(EmbeddingNet(embedding_dim=4)).eval()
    >>> z1, z2 = net(torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28))
    >>> z1.shape, z2.shape
    (torch.Size([2, 4]), torch.Size([2, 4]))

    In training mode an image gets the same embedding in every branch, and
    the running statistics are updated once per call:

    >>> net = net.train()
    >>> x = torch.randn(4, 1, 28, 28)
    >>> z1, z2 = net(x, x)
    >>> torch.allclose(z1, z2), net.encoder.features[2].num_batches_tracked.item()
    (True, 1)
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode each input batch with the shared encoder, in one pass."""
        if not inputs:
            raise ValueError("inputs must be at least one batch of images, got none")
        sizes = [len(x) for x in inputs]
        return tuple(self.encoder(torch.cat(inputs)).split(sizes))


@torch.no_grad()
def embed(model: nn.Module, images, batch_size: int = 1024, device=None) -> torch.Tensor:
    """Embeddings of raw uint8 images ``(N, 28, 28)``, computed in eval mode.

    The images are preprocessed (:func:`~siamese_lib.transforms.preprocess`)
    on ``device``, in chunks of ``batch_size``; the model's train/eval mode
    is restored afterwards.

    Parameters
    ----------
    model : nn.Module
        Maps preprocessed images ``(n, 1, 28, 28)`` to embeddings ``(n, D)``.
    images : Tensor or array of uint8, shape (N, 28, 28)
        Raw pixels.
    batch_size : int
        Images per forward pass (at least 1).
    device : str or torch.device, optional
        Where to compute; default: the device of the model's parameters or buffers.

    Returns
    -------
    Tensor, shape (N, D)
        On the CPU, ready for the metrics and plots.

    Examples
    --------
    >>> import torch
    >>> embed(EmbeddingNet(embedding_dim=4), torch.zeros(3, 28, 28, dtype=torch.uint8)).shape
    torch.Size([3, 4])
    """
    check_number("batch_size", batch_size, low=1, integer=True)
    device = device or next(itertools.chain(model.parameters(), model.buffers())).device
    images = torch.as_tensor(images)
    was_training = model.training
    model.eval()
    try:
        out = [model(preprocess(images[i:i + batch_size].to(device))).cpu()
               for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def save_checkpoint(path, model: EmbeddingNet, **meta) -> None:
    """Save an :class:`EmbeddingNet`'s weights and its settings (plain Python values) to ``path``.

    Parameters
    ----------
    path : path
        The checkpoint file to write.
    model : EmbeddingNet
        Its ``embedding_dim`` and ``normalize`` are saved with its weights.
    **meta
        Further settings to save (plain Python values, readable with
        ``torch.load(weights_only=True)``), returned by :func:`load_checkpoint`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.pt"
    >>> save_checkpoint(path, EmbeddingNet(embedding_dim=4), loss="triplet")
    >>> model, meta = load_checkpoint(path, device="cpu")
    >>> meta["embedding_dim"], meta["loss"]
    (4, 'triplet')
    """
    meta = {"embedding_dim": model.embedding_dim, "normalize": model.normalize, **meta}
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)


def load_checkpoint(path, device=None) -> tuple[EmbeddingNet, dict]:
    """Rebuild the :class:`EmbeddingNet` saved by :func:`save_checkpoint`.

    Loads with ``torch.load(weights_only=True)``: only tensors and plain
    Python values are read, never arbitrary pickled code.

    Parameters
    ----------
    path : path
        The checkpoint file.
    device : str or torch.device, optional
        Where to put the model; default the CPU.

    Returns
    -------
    model : EmbeddingNet
        In eval mode.
    meta : dict
        The settings saved with it.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    meta = checkpoint["meta"]
    model = EmbeddingNet(meta["embedding_dim"], normalize=meta["normalize"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device or "cpu").eval(), meta

"""The few figure helpers the chapters and the command line share (matplotlib, imported when first used)."""

from __future__ import annotations

import numpy as np
import torch

from .evaluation import pair_distances, roc_auc, roc_curve
from .models import embed

__all__ = ["DIGIT_COLORS", "show_digits", "plot_history", "plot_distance_histograms", "plot_roc",
           "plot_embedding", "tsne", "comparison_figures"]

#: One colour per digit, shared by every figure (matplotlib's "tab10" palette), as hex strings.
DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, figsize=(5, 4)):
    if ax is not None:
        return ax.figure, ax
    return _pyplot().subplots(figsize=figsize)


def show_digits(images, labels=None, ncols: int = 10, titles=None, scale: float = 0.9):
    """A grid of uint8 images, each titled with its label (or ``titles``).

    Parameters
    ----------
    images : Tensor or array of uint8, shape (N, 28, 28)
        Raw pixels, drawn dark on light.
    labels : sequence of int, optional
        Title of each image, if ``titles`` is not given.
    ncols : int
        Images per row.
    titles : sequence, optional
        Title of each image, instead of its label.
    scale : float
        Size of one image, in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    images = torch.as_tensor(images)
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _pyplot().subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.15),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=255)
        title = titles[k] if titles is not None else (None if labels is None else int(labels[k]))
        if title is not None:
            ax.set_title(str(title), fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history, keys=("loss", "val_precision_at_1"), axes=None):
    """One panel per history column, against the epoch.

    Parameters
    ----------
    history : History or mapping
        Indexable by ``"epoch"`` and by each of ``keys``, e.g. the
        :class:`~siamese_lib.training.History` of a run.
    keys : sequence of str
        The columns to draw, one panel each.
    axes : sequence of matplotlib.axes.Axes, optional
        One per key; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if axes is None:
        fig, axes = _pyplot().subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
        axes = axes[0]
    for ax, key in zip(axes, keys):
        ax.plot(history["epoch"], history[key], marker="o", ms=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_distance_histograms(distances, y, threshold: float | None = None, ax=None,
                             title: str | None = None):
    """Histograms of the distances of positive (y=1) and negative (y=0) pairs.

    Parameters
    ----------
    distances : array-like, shape (n,)
        Distance of each pair.
    y : array-like, shape (n,)
        1 if the pair shows the same digit, 0 otherwise.
    threshold : float, optional
        Drawn as a dashed vertical line.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure.
    title : str, optional
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax)
    distances, y = np.asarray(distances), np.asarray(y)
    bins = np.linspace(0, np.quantile(distances, 0.995), 50)
    ax.hist(distances[y == 1], bins=bins, alpha=0.6, label="same digit (y=1)", color="tab:blue")
    ax.hist(distances[y == 0], bins=bins, alpha=0.6, label="different digits (y=0)",
            color="tab:orange")
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("distance d")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_roc(curves: dict, ax=None):
    """ROC curves, one per entry ``label -> (distances, y)``, with their AUC in the legend.

    Parameters
    ----------
    curves : dict
        ``label -> (distances, y)``: pair distances and their labels (1 = same digit).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, (4.5, 4.2))
    for label, (distances, y) in curves.items():
        fpr, tpr, _ = roc_curve(distances, y)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc(distances, y):.4f})")
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls=":")
    ax.set_xlabel("false positive rate (different digits accepted)")
    ax.set_ylabel("true positive rate (same digit accepted)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_embedding(points, labels, ax=None, title: str | None = None, s: float = 6):
    """A 2-D scatter of embedded points coloured by digit.

    Parameters
    ----------
    points : array-like, shape (N, 2)
        The points, e.g. from :func:`tsne`.
    labels : array-like of int, shape (N,)
        The digit of each point (its colour, :data:`DIGIT_COLORS`).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure.
    title : str, optional
        Title of the axes.
    s : float
        Marker size.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, (4.6, 4.2))
    points, labels = np.asarray(points), np.asarray(labels)
    for digit in np.unique(labels):
        sel = labels == digit
        ax.scatter(points[sel, 0], points[sel, 1], s=s, color=DIGIT_COLORS[int(digit) % 10],
                   label=str(digit))
    ax.legend(markerscale=2, fontsize=7, ncol=2, title="digit", title_fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return fig


def tsne(embeddings, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of embeddings (scikit-learn, PCA start, perplexity 30, fixed seed).

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
        The points to map; N must exceed the perplexity, 30.
    seed : int
        Seed of the layout.

    Returns
    -------
    numpy.ndarray, shape (N, 2)
    """
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(
        np.asarray(embeddings, dtype=np.float64))


def comparison_figures(comparison, test, pairs) -> dict:
    """ROC overlay and t-SNE scatters of the first seed of each setting of a comparison.

    Parameters
    ----------
    comparison : Comparison
        From :func:`siamese_lib.comparison.compare`.
    test : Split
        The images the settings were measured on.
    pairs : Tensor, shape (n, 3)
        Verification pairs ``(i, j, y)`` of ``test``, e.g.
        :func:`siamese_lib.experiments.fixed_test_pairs`.

    Returns
    -------
    dict
        ``{"roc": Figure, "embedding": Figure}``.
    """
    firsts = {label: runs[0] for label, runs in comparison.results.items()}
    embeddings = {label: embed(r.model, test.images) for label, r in firsts.items()}
    roc = plot_roc({label: pair_distances(z, pairs) for label, z in embeddings.items()})
    fig, axes = _pyplot().subplots(1, len(firsts), figsize=(4.6 * len(firsts), 4.2), squeeze=False)
    for ax, (label, z) in zip(axes[0], embeddings.items()):
        plot_embedding(tsne(z), test.labels, ax=ax, title=f"{label}: t-SNE of test embeddings")
    fig.tight_layout()
    return {"roc": roc, "embedding": fig}

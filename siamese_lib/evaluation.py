r"""How good is an embedding? Retrieval and verification metrics.

Retrieval (Musgrave et al. 2020): every image of a split is a query, the
rest of the split is the gallery (the query itself is left out). With
:math:`R_q` the number of other gallery items sharing the query's label and
:math:`\text{rel}_q(i) = 1` if the :math:`i`-th nearest neighbour shares it:

* precision@1: :math:`\text{rel}_q(1)`, averaged over queries;
* R-precision: :math:`\frac{1}{R_q}\sum_{i=1}^{R_q} \text{rel}_q(i)`;
* MAP@R: :math:`\frac{1}{R_q}\sum_{i=1}^{R_q} P_q(i)\,\text{rel}_q(i)` with
  :math:`P_q(i) = \frac1i\sum_{j\le i}\text{rel}_q(j)`;
* kNN accuracy: majority vote of the :math:`k` nearest neighbours.

Few-shot classification (Snell et al. 2017): in an N-way K-shot episode, N
classes are drawn, K labelled *support* images of each and some *query*
images; each query gets the class whose prototype (the mean of its K support
embeddings) is nearest.

Verification: given pairs with distances :math:`d` and labels :math:`y`
(1 = same class), predict "same" when :math:`d \le t`. ROC-AUC and the equal
error rate (EER, where false accepts equal false rejects) do not depend on
:math:`t`; accuracy does, so :math:`t` is chosen on validation pairs.
"""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_embeddings, check_labels, check_metric, check_number
from .distances import _paired, _pairwise

__all__ = ["precision_at_1", "r_precision", "map_at_r", "knn_accuracy", "retrieval_metrics",
           "pair_distances", "roc_curve", "roc_auc", "equal_error_rate", "best_threshold",
           "verification_accuracy", "few_shot_accuracy"]

_CHUNK = 1024
_TIE_SEED = 0
_EPISODES_PER_CHUNK = 50


def _nearest(embeddings, metric, k):
    """The ``k`` nearest other items of every item, in chunks of queries: ``(start, indices)``.

    Each query is left out of its own neighbours. Ties in distance are broken
    in a fixed pseudo-random order of the gallery (seeded, the same every
    time), not by index: data sorted by label would otherwise hand a constant
    embedding neighbours of the query's own class, and a score above chance.
    """
    n = len(embeddings)
    shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(_TIE_SEED)).to(embeddings.device)
    gallery, own_column = embeddings[shuffle], torch.argsort(shuffle)
    for start in range(0, n, _CHUNK):
        dist = _pairwise(embeddings[start:start + _CHUNK], gallery, metric)
        rows = torch.arange(dist.shape[0], device=dist.device)
        dist[rows, own_column[rows + start]] = torch.inf  # each query's own column
        yield start, shuffle[torch.sort(dist, dim=1, stable=True).indices[:, :k]]


def _neighbour_matches(embeddings, labels, metric, k=None):
    """``rel[q, i]``: does the i-th nearest neighbour of q share its label? Plus ``R_q``."""
    check_embeddings("embeddings", embeddings)
    check_metric(metric)
    labels = check_labels("labels", labels, len(embeddings), device=embeddings.device)
    same = labels[:, None] == labels[None, :]
    r = same.sum(dim=1) - 1
    if len(labels) < 2 or r.max() < 1:
        counts = torch.unique(labels, return_counts=True)[1].tolist()
        raise ValueError("labels must give at least one query another item with its label "
                         f"(at least 2 items per label), got counts {counts}")
    k = min(k or int(r.max()), len(labels) - 1)
    rows = [labels[order] == labels[start:start + len(order), None]
            for start, order in _nearest(embeddings, metric, k)]
    return torch.cat(rows), r


def _precision_at_1(rel, r) -> float:
    return rel[:, 0].double().mean().item()


def _r_precision(rel, r) -> float:
    keep = r > 0
    ranks = torch.arange(rel.shape[1], device=rel.device)[None, :]
    hits = (rel & (ranks < r[:, None])).sum(dim=1)
    return (hits[keep] / r[keep]).double().mean().item()


def _map_at_r(rel, r) -> float:
    keep = r > 0
    ranks = torch.arange(1, rel.shape[1] + 1, device=rel.device)[None, :]
    precision = rel.cumsum(dim=1) / ranks
    within_r = ranks <= r[:, None]
    ap = (precision * rel * within_r).sum(dim=1)
    return (ap[keep] / r[keep]).double().mean().item()


def precision_at_1(embeddings: torch.Tensor, labels, metric: str = "euclidean") -> float:
    """Fraction of queries whose nearest neighbour has the same label.

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        One embedding per item.
    labels : array-like of int, shape (N,)
        The class of each item.
    metric : str
        The distance that ranks the neighbours.

    Returns
    -------
    float
    """
    return _precision_at_1(*_neighbour_matches(embeddings, labels, metric, k=1))


def r_precision(embeddings: torch.Tensor, labels, metric: str = "euclidean") -> float:
    """Mean over queries of the fraction of same-label items among the R nearest.

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        One embedding per item.
    labels : array-like of int, shape (N,)
        The class of each item.
    metric : str
        The distance that ranks the neighbours.

    Returns
    -------
    float
    """
    return _r_precision(*_neighbour_matches(embeddings, labels, metric))


def map_at_r(embeddings: torch.Tensor, labels, metric: str = "euclidean") -> float:
    """Mean average precision at R (Musgrave et al. 2020).

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        One embedding per item.
    labels : array-like of int, shape (N,)
        The class of each item.
    metric : str
        The distance that ranks the neighbours.

    Returns
    -------
    float
    """
    return _map_at_r(*_neighbour_matches(embeddings, labels, metric))


def knn_accuracy(embeddings: torch.Tensor, labels, k: int = 5, metric: str = "euclidean") -> float:
    """Leave-one-out k-nearest-neighbour classification accuracy.

    Each query is given the class with the most votes among its ``k``
    nearest neighbours; a tie between classes with equally many votes goes to
    the tied class whose nearest neighbour is closest.

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        One embedding per item.
    labels : array-like of int, shape (N,)
        The class of each item.
    k : int
        Neighbours that vote.
    metric : str
        The distance that ranks the neighbours.

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> knn_accuracy(z, torch.tensor([0, 0, 0, 1, 1, 1]), k=2)
    1.0
    """
    k = check_number("k", k, low=1, integer=True)
    check_embeddings("embeddings", embeddings)
    check_metric(metric)
    labels = check_labels("labels", labels, len(embeddings), device=embeddings.device)
    classes, codes = torch.unique(labels, return_inverse=True)
    k = min(k, len(labels) - 1)
    # score = votes * (k + 1) + (k - rank of the class's nearest neighbour): votes first, then closeness
    ranks = torch.arange(k, device=labels.device)
    correct = 0
    for start, order in _nearest(embeddings, metric, k):
        onehot = torch.nn.functional.one_hot(codes[order], len(classes))  # (q, k, C)
        votes = onehot.sum(dim=1)
        first = torch.where(onehot.bool(), ranks[None, :, None], k).amin(dim=1)
        score = votes * (k + 1) + (k - first)
        correct += (score.argmax(dim=1) == codes[start:start + len(order)]).sum().item()
    return correct / len(labels)


def retrieval_metrics(embeddings: torch.Tensor, labels, metric: str = "euclidean",
                      k: int = 5) -> dict[str, float]:
    """precision@1, R-precision, MAP@R and kNN accuracy in one dictionary.

    The neighbours are ranked once for the first three.

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        One embedding per item.
    labels : array-like of int, shape (N,)
        The class of each item.
    metric : str
        The distance that ranks the neighbours.
    k : int
        Neighbours that vote in the kNN accuracy.

    Returns
    -------
    dict
        ``precision_at_1``, ``r_precision``, ``map_at_r``, ``knn_accuracy``.
    """
    rel, r = _neighbour_matches(embeddings, labels, metric)
    return {
        "precision_at_1": _precision_at_1(rel, r),
        "r_precision": _r_precision(rel, r),
        "map_at_r": _map_at_r(rel, r),
        "knn_accuracy": knn_accuracy(embeddings, labels, k, metric),
    }


def pair_distances(embeddings: torch.Tensor, pairs, metric: str = "euclidean"):
    """Distances and labels of index pairs ``(i, j, y)`` from :func:`~siamese_lib.sampling.make_pairs`.

    ``embeddings`` are those of the split the pairs were drawn from (from
    :func:`~siamese_lib.models.embed`), so each image is encoded once however
    many pairs it is in.

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        The embeddings of the split.
    pairs : array-like of int, shape (n_pairs, 3)
        Rows ``(i, j, y)``: two indices into ``embeddings`` and the pair label.
    metric : str
        The distance.

    Returns
    -------
    distances : ndarray of float64, shape (n_pairs,)
    y : ndarray of int64, shape (n_pairs,)
        1 for same-class pairs.
    """
    check_embeddings("embeddings", embeddings)
    pairs = torch.as_tensor(pairs)
    if pairs.dim() != 2 or pairs.shape[1] != 3:
        raise ValueError(f"pairs must have shape (n, 3) with columns i, j, y, got {tuple(pairs.shape)}")
    i, j, y = pairs.to(embeddings.device).unbind(1)
    d = _paired(embeddings[i], embeddings[j], check_metric(metric))
    return d.detach().cpu().numpy().astype(np.float64), y.cpu().numpy()


def _check_pairs(distances, y):
    distances, y = np.asarray(distances, dtype=np.float64), np.asarray(y)
    if distances.ndim != 1 or distances.shape != y.shape:
        raise ValueError(f"distances and y must be 1-D of equal length, got {distances.shape} and {y.shape}")
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise ValueError("y must contain both 0 (different) and 1 (same), and nothing else")
    if not np.isfinite(distances).all():
        raise ValueError("distances must be finite, got NaN or inf")
    return distances, y


def roc_curve(distances, y):
    r"""False and true positive rates when "same" means :math:`d \le t`, for every threshold t.

    Parameters
    ----------
    distances : array-like of float, shape (n_pairs,)
        Distances of the pairs, e.g. from :func:`pair_distances`.
    y : array-like of {0, 1}, shape (n_pairs,)
        1 for same-class pairs; both labels must occur.

    Returns
    -------
    fpr, tpr, thresholds : ndarray
        One entry per threshold, in increasing order of the rates.
    """
    from sklearn.metrics import roc_curve as sk_roc_curve  # imported here: slow to load

    distances, y = _check_pairs(distances, y)
    fpr, tpr, thresholds = sk_roc_curve(y, -distances)
    return fpr, tpr, -thresholds


def roc_auc(distances, y) -> float:
    """Area under the ROC curve.

    The probability that a random positive pair is closer than a random negative pair.


    Parameters
    ----------
    distances : array-like of float, shape (n_pairs,)
        Distances of the pairs, e.g. from :func:`pair_distances`.
    y : array-like of {0, 1}, shape (n_pairs,)
        1 for same-class pairs; both labels must occur.

    Returns
    -------
    float
    """
    from sklearn.metrics import roc_auc_score  # imported here: slow to load

    distances, y = _check_pairs(distances, y)
    return float(roc_auc_score(y, -distances))


def equal_error_rate(distances, y) -> float:
    """The error rate where false accepts equal false rejects.

    Found by linear interpolation between the two ROC points around the crossing.


    Parameters
    ----------
    distances : array-like of float, shape (n_pairs,)
        Distances of the pairs, e.g. from :func:`pair_distances`.
    y : array-like of {0, 1}, shape (n_pairs,)
        1 for same-class pairs; both labels must occur.

    Returns
    -------
    float
    """
    fpr, tpr, _ = roc_curve(distances, y)
    fnr = 1 - tpr
    i = int(np.flatnonzero(fpr >= fnr)[0])
    if i == 0:
        return float(fpr[0])
    # the crossing lies between points i-1 and i; interpolate fpr - fnr to zero
    gap_before, gap_after = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
    w = gap_before / (gap_before - gap_after)
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def best_threshold(distances, y) -> float:
    r"""The threshold t that maximises the accuracy of "same if :math:`d \le t`" on these pairs.

    Use it on validation pairs, then report :func:`verification_accuracy` on test pairs.

    Parameters
    ----------
    distances : array-like of float, shape (n_pairs,)
        Distances of the pairs, e.g. from :func:`pair_distances`.
    y : array-like of {0, 1}, shape (n_pairs,)
        1 for same-class pairs; both labels must occur.

    Returns
    -------
    float
        A threshold with the highest accuracy on these pairs. Pairs at equal
        distances always fall on the same side of a threshold, so the
        candidates are one value below the smallest distance (everything
        "different"), the midpoints between consecutive *distinct* distances,
        and one value above the largest (everything "same"). Among candidates
        with equal accuracy the smallest wins.

    Examples
    --------
    >>> d, y = [0.1, 0.4, 0.9, 0.5, 1.2, 2.0], [1, 1, 1, 0, 0, 0]
    >>> best_threshold(d, y)  # accepts 0.1 and 0.4: 5 of 6 right
    0.45

    Two pairs at distance 0, one same and one different, cannot be split:

    >>> d, y = [0.0, 0.0, 1.0], [1, 0, 1]
    >>> t = best_threshold(d, y)
    >>> round(t, 3), round(verification_accuracy(d, y, t), 3)
    (1.0, 0.667)
    """
    distances, y = _check_pairs(distances, y)
    order = np.argsort(distances, kind="stable")
    d, yy = distances[order], y[order]
    n = len(d)
    # accepting the first i pairs is possible only where d[i - 1] < d[i] (or i = 0, n): ties go together
    cuts = np.concatenate([[0], np.flatnonzero(d[1:] > d[:-1]) + 1, [n]])
    # correct = positives among the accepted + negatives among the rejected
    positives_in = np.concatenate([[0], np.cumsum(yy)])[cuts]
    negatives_in = cuts - positives_in
    correct = positives_in + (n - yy.sum()) - negatives_in
    i = int(cuts[int(np.argmax(correct))])
    if i == 0:
        return _beyond(d[0], -np.inf)
    if i == n:
        return _beyond(d[-1], np.inf)
    below, above = d[i - 1], d[i]
    middle = below / 2 + above / 2
    return float(middle if below <= middle < above else below)  # adjacent floats have no middle


def _beyond(value: float, direction: float) -> float:
    """A number a little beyond ``value`` towards ``direction`` (-inf or inf), never equal to it."""
    step = 1e-6 * max(1.0, abs(value))
    moved = value - step if direction < 0 else value + step
    return float(moved if np.isfinite(moved) else np.nextafter(value, direction))


def verification_accuracy(distances, y, threshold: float) -> float:
    r"""Accuracy of predicting "same class" exactly when :math:`d \le t`.

    Parameters
    ----------
    distances : array-like of float, shape (n_pairs,)
        Distances of the pairs, e.g. from :func:`pair_distances`.
    y : array-like of {0, 1}, shape (n_pairs,)
        1 for same-class pairs; both labels must occur.
    threshold : float
        The threshold t, chosen on other pairs (:func:`best_threshold`).

    Returns
    -------
    float
    """
    distances, y = _check_pairs(distances, y)
    return float(((distances <= threshold) == (y == 1)).mean())


def few_shot_accuracy(embeddings: torch.Tensor, labels, n_way: int = 5, k_shot: int = 1,
                      n_query: int = 15, episodes: int = 1000, seed: int = 0,
                      metric: str = "euclidean") -> tuple[float, float]:
    r"""Mean accuracy of nearest-prototype classification over random N-way K-shot episodes.

    Each episode draws ``n_way`` classes among those with at least
    ``k_shot + n_query`` items, then ``k_shot`` support and ``n_query`` query
    items of each, all distinct. A query is assigned the class whose prototype
    :math:`c_j = \frac1K \sum_{s \in S_j} z_s` (for K = 1 the support item
    itself) is nearest in ``metric``; ties go to the first of the tied classes
    in the episode's random order, so a constant embedding scores chance,
    :math:`1/N`.

    Parameters
    ----------
    embeddings : Tensor, shape (N, D)
        One embedding per item.
    labels : array-like of int, shape (N,)
        The class of each item.
    n_way, k_shot, n_query : int
        Classes per episode, support items and query items per class.
    episodes : int
        Number of episodes.
    seed : int
        Seed of the episodes' draws.
    metric : str
        The distance to the prototypes.

    Returns
    -------
    (accuracy, half_width) : tuple of float
        The mean accuracy over episodes and the half-width of its 95 %
        confidence interval, :math:`1.96\,s/\sqrt{\text{episodes}}` with
        :math:`s` the standard deviation of the episodes' accuracies.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> few_shot_accuracy(z, torch.tensor([0, 0, 0, 1, 1, 1]), n_way=2, n_query=2, episodes=10)
    (1.0, 0.0)
    """
    n_way = check_number("n_way", n_way, low=2, integer=True)
    k_shot = check_number("k_shot", k_shot, low=1, integer=True)
    n_query = check_number("n_query", n_query, low=1, integer=True)
    episodes = check_number("episodes", episodes, low=1, integer=True)
    check_embeddings("embeddings", embeddings)
    check_metric(metric)
    labels = check_labels("labels", labels, len(embeddings), device=embeddings.device)
    classes, counts = torch.unique(labels, return_counts=True)
    usable = classes[counts >= k_shot + n_query]
    if len(usable) < n_way:
        raise ValueError(f"n_way={n_way} needs as many classes with at least k_shot + n_query = "
                         f"{k_shot + n_query} items, got {len(usable)} such classes")
    g = torch.Generator().manual_seed(seed)
    # members[c, :counts[c]]: the items of usable class c, padded with -1
    counts = counts[counts >= k_shot + n_query]
    members = torch.full((len(usable), int(counts.max())), -1, dtype=torch.long)
    for row, c in enumerate(usable.tolist()):
        members[row, :counts[row]] = torch.nonzero(labels == c).flatten().cpu()
    accuracy = []
    for first in range(0, episodes, _EPISODES_PER_CHUNK):
        e = min(_EPISODES_PER_CHUNK, episodes - first)
        ways = torch.rand(e, len(usable), generator=g).argsort(dim=1)[:, :n_way]        # (e, N)
        keys = torch.rand(e, n_way, members.shape[1], generator=g)
        keys[torch.arange(members.shape[1]) >= counts.cpu()[ways][..., None]] = 2.0    # padding last
        slots = keys.argsort(dim=2)[..., :k_shot + n_query]                            # (e, N, K + Q)
        picks = members[ways[..., None], slots].to(embeddings.device)
        prototypes = embeddings[picks[..., :k_shot]].mean(dim=2).reshape(e * n_way, -1)
        queries = embeddings[picks[..., k_shot:]].reshape(e * n_way * n_query, -1)
        dist = _pairwise(queries, prototypes, metric).reshape(e, n_way * n_query, e, n_way)
        own = torch.arange(e, device=dist.device)
        guess = dist[own, :, own, :].argmin(dim=2)                                     # (e, N·Q)
        truth = torch.arange(n_way, device=guess.device).repeat_interleave(n_query)
        accuracy.append((guess == truth).double().mean(dim=1).cpu())
    accuracy = torch.cat(accuracy)
    half_width = 1.96 * accuracy.std().item() / episodes**0.5 if episodes > 1 else float("nan")
    return accuracy.mean().item(), half_width


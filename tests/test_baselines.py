"""The three baselines go through the same code path as the losses and are what they claim to be."""

import numpy as np
import pytest
import torch

from siamese_lib import baselines, experiments
from siamese_lib.models import EmbeddingNet, embed
from siamese_lib.training import seeded


def test_every_baseline_is_accepted_by_run_and_listed(small_mnist):
    assert experiments.BASELINES == baselines.BASELINES == ("pixels", "untrained", "softmax")
    with pytest.raises(ValueError, match="'pixels', 'untrained', 'softmax'"):
        experiments.run("arcface", data=small_mnist)


def brute_force_precision_at_1(images, labels):
    """Precision@1 of raw pixels: for each image, is the nearest other image (Euclidean) of its digit?

    Preprocessing subtracts a constant and divides by another, so it scales every Euclidean
    distance by the same factor: raw pixels have the same nearest neighbours, with distances
    that are exact integers. ``evaluation`` breaks ties in a seeded random order, so the
    data must have no tie that it could break either way; the test checks that it has none,
    nor a near-tie that float32 round-off could flip.
    """
    x = np.asarray(images).reshape(len(images), -1).astype(np.int64)
    y = np.asarray(labels)
    hits = 0
    for q in range(len(x)):
        d = np.array([((x[i] - x[q]) ** 2).sum() if i != q else np.iinfo(np.int64).max
                      for i in range(len(x))])
        nearest = np.flatnonzero(d == d.min())
        hit = y[nearest[0]] == y[q]
        assert all((y[nearest] == y[q]) == hit), f"query {q}: tied neighbours disagree"
        rival = d[(y == y[q]) != hit].min()  # the nearest image that would change the outcome
        assert rival > d.min() * (1 + 1e-4), f"query {q}: near-tie"
        hits += hit
    return hits / len(x)


def test_pixels_are_the_flattened_preprocessed_images(small_mnist):
    result = experiments.run("pixels", data=small_mnist)
    images, labels = small_mnist.test.images, small_mnist.test.labels
    # its score is that of nearest neighbours in pixel space, found here by brute force
    expected_score = brute_force_precision_at_1(images, labels)
    assert 0.5 < expected_score < 1
    assert result.metrics["precision_at_1"] == pytest.approx(expected_score, abs=1e-12)
    # its embedding is the image itself, (pixel / 255 - mean) / std, flattened
    pixels = images.reshape(len(images), -1).double()
    expected = ((pixels / 255 - 0.1307) / 0.3081).float()
    torch.testing.assert_close(embed(result.model, images), expected)
    assert len(result.history) == 0  # nothing trained, no margin and no mining
    assert result.config.get("margin") is None and result.config.get("mining") is None


def test_untrained_is_the_seeded_initial_encoder(small_mnist):
    result = experiments.run("untrained", data=small_mnist, seed=3, embedding_dim=8)
    with seeded(3):
        fresh = EmbeddingNet(8)
    images = small_mnist.test.images
    torch.testing.assert_close(embed(result.model, images), embed(fresh, images))
    assert len(result.history) == 0


def test_softmax_trains_the_encoder_as_a_classifier(small_mnist):
    before = experiments.run("untrained", data=small_mnist, embedding_dim=8)
    result = experiments.run("softmax", data=small_mnist, embedding_dim=8, epochs=3,
                             train_classes=[0, 1, 2, 3, 4])
    losses = result.history["loss"]
    assert losses[-1] < losses[0] < 2.0  # cross-entropy over five classes starts near log 5 = 1.61
    assert result.model.embedding_dim == 8  # the embedding is the encoder's output, not the logits
    assert result.config["test_classes"] == [5, 6, 7, 8, 9]
    assert not any(torch.equal(a.cpu(), b.cpu())
               for a, b in zip(result.model.parameters(), before.model.parameters()))


def test_the_classifier_maps_digits_to_its_classes_and_rejects_others():
    model = baselines.SoftmaxClassifier(EmbeddingNet(4), classes=[7, 2, 5])
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])  # first class 2, then class 7
    assert model.loss(logits, torch.tensor([2, 7])) < 0.02
    assert model.loss(logits, torch.tensor([7, 2])) > 4.0
    with pytest.raises(ValueError, match=r"among the classifier's classes \[2, 5, 7\], got \[3\]"):
        model.loss(logits, torch.tensor([3, 2]))

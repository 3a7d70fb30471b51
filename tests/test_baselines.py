"""The three baselines go through the same code path as the losses and are what they claim to be."""

import pytest
import torch

from siamese_lib import baselines, evaluation, experiments
from siamese_lib.models import EmbeddingNet, embed
from siamese_lib.training import seeded
from siamese_lib.transforms import preprocess


def test_every_baseline_is_accepted_by_run_and_listed(small_mnist):
    assert experiments.BASELINES == baselines.BASELINES == ("pixels", "untrained", "softmax")
    with pytest.raises(ValueError, match="'pixels', 'untrained', 'softmax'"):
        experiments.run("arcface", data=small_mnist)


def test_pixels_are_the_flattened_preprocessed_images(small_mnist):
    result = experiments.run("pixels", data=small_mnist)
    images = small_mnist.test.images
    expected = preprocess(images).flatten(start_dim=1)
    torch.testing.assert_close(embed(result.model, images), expected)
    # and its scores are those of nearest neighbours in pixel space, computed here directly
    assert result.metrics["precision_at_1"] == evaluation.precision_at_1(expected, small_mnist.test.labels)
    assert len(result.history) == 0 and result.config["margin"] is None and result.config["mining"] is None


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

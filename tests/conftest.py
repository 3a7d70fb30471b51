"""Shared test settings: small, fast and deterministic."""

import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("book", max_examples=60, deadline=None, derandomize=True)
settings.load_profile("book")


import pytest  # noqa: E402

from siamese_lib import data  # noqa: E402


def _first_per_class(split, n):
    keep = torch.cat([torch.nonzero(split.labels == c).flatten()[:n] for c in range(10)]).sort().values
    return data.Split(split.images[keep], split.labels[keep])


@pytest.fixture(scope="session")
def small_mnist():
    """A tenth of the embedded data, for training tests that must take seconds."""
    full = data.load_mnist("embedded")
    return data.MNIST(_first_per_class(full.train, 30), _first_per_class(full.val, 10),
                      _first_per_class(full.test, 20), "embedded")

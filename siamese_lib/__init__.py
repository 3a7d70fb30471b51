"""siamese_lib: the small library behind *Siamese Networks — Contrastive vs Triplet Loss*.

Flat modules, one idea each, from the bottom layer up:
:mod:`~siamese_lib.distances`, :mod:`~siamese_lib.mining`,
:mod:`~siamese_lib.losses`, :mod:`~siamese_lib.online_losses`,
:mod:`~siamese_lib.data`, :mod:`~siamese_lib.transforms`,
:mod:`~siamese_lib.sampling`, :mod:`~siamese_lib.models`,
:mod:`~siamese_lib.training`, :mod:`~siamese_lib.evaluation`,
:mod:`~siamese_lib.experiments`, :mod:`~siamese_lib.comparison` and
:mod:`~siamese_lib.plotting`.
"""

from . import (
    comparison,
    data,
    distances,
    evaluation,
    experiments,
    losses,
    mining,
    models,
    online_losses,
    sampling,
    training,
    transforms,
)

__version__ = "0.1.0"
__all__ = ["comparison", "data", "distances", "evaluation", "experiments", "losses", "mining",
           "models", "online_losses", "sampling", "training", "transforms"]

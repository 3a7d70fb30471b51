"""siamese_lib: the small library behind *Siamese Networks — Contrastive vs Triplet Loss*.

Flat modules, one idea each: :mod:`~siamese_lib.distances`,
:mod:`~siamese_lib.losses`, :mod:`~siamese_lib.mining`,
:mod:`~siamese_lib.data`, :mod:`~siamese_lib.models`,
:mod:`~siamese_lib.training`, :mod:`~siamese_lib.evaluation`,
:mod:`~siamese_lib.experiments` and :mod:`~siamese_lib.plotting`.
"""

from . import data, distances, evaluation, experiments, losses, mining, models, training

__version__ = "0.1.0"
__all__ = ["data", "distances", "evaluation", "experiments", "losses", "mining", "models",
           "training"]

"""siamese_lib: the small library behind *Siamese Networks — Contrastive vs Triplet Loss*.

Flat modules, one idea each, from the bottom layer up:

* :mod:`~siamese_lib.distances`: the four distances, row by row or all against all;
* :mod:`~siamese_lib.mining`: masks and selectors of pairs and triplets in a batch;
* :mod:`~siamese_lib.losses` and :mod:`~siamese_lib.online_losses`: the contrastive
  and triplet losses, on given pairs / triplets and mined in a batch;
* :mod:`~siamese_lib.info_nce`: the losses that came after them, NT-Xent (InfoNCE) and
  the supervised contrastive loss, over every row of a batch at once;
* :mod:`~siamese_lib.data`, :mod:`~siamese_lib.transforms`, :mod:`~siamese_lib.sampling`:
  MNIST, its preprocessing and augmentation, and the batches;
* :mod:`~siamese_lib.models` and :mod:`~siamese_lib.baselines`: the encoder, and the
  embeddings it is measured against (pixels, untrained, softmax);
* :mod:`~siamese_lib.training` and :mod:`~siamese_lib.evaluation`: the training loop and
  the scores;
* :mod:`~siamese_lib.tuning`: every default, with the validation evidence that selects it;
* :mod:`~siamese_lib.experiments` and :mod:`~siamese_lib.comparison`: one run the book's
  way, and many runs over seeds and partitions of the digits;
* :mod:`~siamese_lib.plotting`: the figure helpers the chapters share.

Importing the package loads PyTorch but neither pandas, scikit-learn nor
matplotlib: the functions that need them import them when called.
"""

from . import (
    baselines,
    comparison,
    data,
    distances,
    evaluation,
    experiments,
    info_nce,
    losses,
    mining,
    models,
    online_losses,
    plotting,
    sampling,
    training,
    transforms,
    tuning,
)

__version__ = "0.1.0"
__all__ = ["baselines", "comparison", "data", "distances", "evaluation", "experiments", "info_nce",
           "losses", "mining", "models", "online_losses", "plotting", "sampling", "training",
           "transforms", "tuning"]

"""Training speed and quality with the book's defaults.

    python benchmarks/bench_train.py

1. Pairs per second of one contrastive training step (forward, backward, AdamW)
   when the shared encoder runs once on the concatenated pair batch versus
   twice, once per branch.
2. Time and test metrics of ``experiments.run`` with its defaults for each loss
   (targets: each run <= 60 s on a 2-core CPU; precision@1 on the test split).
"""

from __future__ import annotations

import statistics
import time

import torch

from siamese_lib import experiments, tuning
from siamese_lib.losses import contrastive_loss
from siamese_lib.models import EmbeddingNet

PAIRS_PER_STEP = experiments.IMAGES_PER_STEP // 2
REPEATS = 5


def pairs_per_second(concatenate: bool, steps: int = 60) -> float:
    torch.manual_seed(0)
    encoder = EmbeddingNet()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    x1, x2 = torch.randn(2, PAIRS_PER_STEP, 1, 28, 28).unbind(0)
    y = (torch.arange(PAIRS_PER_STEP) % 2).float()

    def step():
        if concatenate:
            z1, z2 = encoder(torch.cat([x1, x2])).split(PAIRS_PER_STEP)
        else:
            z1, z2 = encoder(x1), encoder(x2)
        loss = contrastive_loss(z1, z2, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * PAIRS_PER_STEP / (time.perf_counter() - start)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rates = {True: [], False: []}
    for _ in range(REPEATS):  # interleaved, so a slow spell of the machine hits both
        for concatenate in rates:
            rates[concatenate].append(pairs_per_second(concatenate))
    once, twice = (statistics.median(rates[c]) for c in (True, False))
    print(f"contrastive step, {PAIRS_PER_STEP} pairs, median of {REPEATS} interleaved runs: encoder "
          f"once on the concatenated batch {once:,.0f} pairs/s; once per branch {twice:,.0f} pairs/s "
          f"({once / twice:.2f}x; range {min(rates[True]):,.0f}-{max(rates[True]):,.0f} and "
          f"{min(rates[False]):,.0f}-{max(rates[False]):,.0f})")
    print(f"experiments.run with the book's defaults (epochs={tuning.EPOCHS}, "
          f"embedding_dim={tuning.EMBEDDING_DIM}):")
    for loss in experiments.LOSSES:
        result = experiments.run(loss)
        m = result.metrics
        print(f"  {loss:<12} ({result.config['metric']}, margin {result.config['margin']:g}) "
              f"train {result.seconds:5.1f} s   P@1 {m['precision_at_1']:.4f}   "
              f"MAP@R {m['map_at_r']:.4f}   ROC-AUC {m['roc_auc']:.4f}   EER {m['eer']:.4f}")


if __name__ == "__main__":
    main()

"""Batch-hard mining + triplet loss (forward and backward), B=256, D=64, three implementations.

    python benchmarks/bench_mining.py

(a) a per-anchor Python loop, (b) pytorch-metric-learning's BatchHardMiner +
TripletMarginLoss, (c) siamese_lib. All three compute the same number (checked);
the targets are (c) >= 50x faster than (a) and no slower than (b).
"""

from __future__ import annotations

import time

import torch

from siamese_lib.online_losses import batch_hard_triplet_loss

B, D, CLASSES, MARGIN = 256, 64, 16, 0.5


def loop_batch_hard(z, labels):
    """One anchor at a time: the way mining is often first written."""
    per_anchor = []
    for a in range(len(z)):
        d = ((z[a] - z) ** 2).sum(dim=1)
        pos = (labels == labels[a]) & (torch.arange(len(z)) != a)
        neg = labels != labels[a]
        if pos.any() and neg.any():
            per_anchor.append(torch.relu(d[pos].max() - d[neg].min() + MARGIN))
    return torch.stack(per_anchor).mean()


def pml_batch_hard():
    from pytorch_metric_learning import distances, losses, miners, reducers

    distance = distances.LpDistance(normalize_embeddings=False, p=2, power=2)
    miner = miners.BatchHardMiner(distance=distance)
    loss_fn = losses.TripletMarginLoss(margin=MARGIN, distance=distance, reducer=reducers.MeanReducer())
    return lambda z, labels: loss_fn(z, labels, miner(z, labels))


def best_time(fn, z, labels, repeats):
    """Fastest of ``repeats`` runs of forward + backward, in seconds."""
    times = []
    for _ in range(repeats):
        z.grad = None
        start = time.perf_counter()
        fn(z, labels).backward()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> dict[str, float]:
    torch.manual_seed(0)
    z = torch.randn(B, D, requires_grad=True)
    labels = torch.arange(B) % CLASSES
    candidates = {
        "per-anchor loop": loop_batch_hard,
        "pytorch-metric-learning": pml_batch_hard(),
        "siamese_lib": lambda z, labels: batch_hard_triplet_loss(z, labels, MARGIN, "sqeuclidean"),
    }
    values = {name: fn(z, labels).item() for name, fn in candidates.items()}
    assert max(values.values()) - min(values.values()) < 1e-4 * max(values.values()), values
    for fn in candidates.values():  # warm-up
        best_time(fn, z, labels, 3)
    seconds = {name: best_time(fn, z, labels, 10 if "loop" in name else 200)
               for name, fn in candidates.items()}
    print(f"batch-hard triplet loss, forward + backward, B={B}, D={D}, {torch.get_num_threads()} threads")
    for name, s in seconds.items():
        print(f"  {name:<26} {s * 1e3:8.3f} ms   (loss {values[name]:.5f})")
    ours = seconds["siamese_lib"]
    ratios = {"vs loop": seconds["per-anchor loop"] / ours,
              "vs pytorch-metric-learning": seconds["pytorch-metric-learning"] / ours}
    print(f"  siamese_lib is {ratios['vs loop']:.0f}x faster than the loop (target >= 50x)")
    print(f"  siamese_lib is {ratios['vs pytorch-metric-learning']:.2f}x the speed of "
          "pytorch-metric-learning (target >= 1)")
    return ratios


if __name__ == "__main__":
    main()

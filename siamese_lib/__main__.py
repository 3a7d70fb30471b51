"""Command line: ``python -m siamese_lib compare ...`` and ``python -m siamese_lib train ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import comparison, experiments, tuning
from .data import SOURCES, load_mnist
from .distances import METRICS
from .mining import STRATEGIES
from .models import save_checkpoint

METHODS = experiments.LOSSES + experiments.BASELINES


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    # None: the book's default from siamese_lib.tuning, filled in by experiments.run
    parser.add_argument("--mining", choices=STRATEGIES, default=None,
                        help="random pairs / triplets, or batch_all, batch_hard or (triplet) "
                             "semi_hard mining in P×K batches (default: batch_all)")
    parser.add_argument("--metric", choices=METRICS, default=None,
                        help="distance of the loss and of the scores (default: euclidean, and "
                             "sqeuclidean for the triplet loss)")
    parser.add_argument("--margin", type=_positive_float, default=None,
                        help="margin m (default: the validated margin of the loss, metric and "
                             "normalisation; required where none was validated; compare takes it "
                             "with one loss only, since the losses measure it in different units)")
    parser.add_argument("--normalize", action="store_true",
                        help="L2-normalise the embeddings")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help=f"passes over the training split (default: {tuning.EPOCHS})")
    parser.add_argument("--embedding-dim", type=_positive_int, default=None,
                        help=f"size of the embedding (default: {tuning.EMBEDDING_DIM})")
    parser.add_argument("--lr", type=_positive_float, default=None,
                        help=f"AdamW learning rate (default: {tuning.LR})")
    parser.add_argument("--no-augment", action="store_true",
                        help=f"train on the images as they are, without the default "
                             f"augmentation {tuning.AUGMENT!r}")
    parser.add_argument("--data", choices=SOURCES, default=None,
                        help="MNIST source: the embedded 5,000-image subset (offline) or full "
                             "MNIST via torchvision (downloads once); default: $SIAMESE_MNIST "
                             "or embedded")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or mps (default: the first available of cuda, mps, cpu)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m siamese_lib``.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="python -m siamese_lib",
        description="Train Siamese networks on MNIST with the contrastive or the triplet "
                    "loss, and compare the two under one protocol.")
    sub = parser.add_subparsers(dest="command", required=True)

    compare = sub.add_parser(
        "compare", help="train each method over several seeds and write a results table, "
        "a summary and figures",
        description="Train each method with the book's protocol over several seeds; write "
        "results.csv (one row per method and seed), summary.md (mean ± std) and figures. With "
        "--unseen, train on the training digits of each partition of comparison.PARTITIONS, "
        "measure on the digits never seen in training, and write unseen.csv and unseen.md "
        "(means, paired differences with bootstrap intervals). --unseen changes nothing else. "
        "The training options apply to the methods that take them "
        "(experiments.TRAINING_ARGUMENTS): --epochs trains the losses and the softmax "
        "baseline longer and leaves the pixel and untrained baselines as they are.")
    compare.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                         help="losses and baselines to compare (default: all: %(default)s)")
    compare.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                         help="random seeds, at least one (default: 0 1 2)")
    compare.add_argument("--unseen", action="store_true",
                         help="train on some digits and measure on digits never seen in training")
    compare.add_argument("--out", type=Path, default=Path("results"),
                         help="output folder, created if missing (default: %(default)s)")
    _add_training_options(compare)

    train = sub.add_parser("train", help="train one model and save a checkpoint",
                           description="Train one embedding network and save its weights.")
    train.add_argument("--loss", choices=experiments.LOSSES, required=True,
                       help="which loss to train with")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--out", type=Path, default=Path("model.pt"),
                       help="checkpoint file (default: %(default)s)")
    _add_training_options(train)
    return parser


def _options(args) -> dict:
    """``run`` keywords from the options that were given (the others keep run's defaults)."""
    given = {"mining": args.mining, "margin": args.margin, "metric": args.metric,
             "epochs": args.epochs, "embedding_dim": args.embedding_dim, "lr": args.lr,
             "normalize": args.normalize or None}
    options = {k: v for k, v in given.items() if v is not None}
    if args.no_augment:
        options["transform"] = None
    return options


def _settings(args) -> dict:
    """Per method, the given options that it takes (see ``experiments.TRAINING_ARGUMENTS``)."""
    options = _options(args)
    losses = [m for m in args.methods if m in experiments.LOSSES]
    if "margin" in options and len(losses) > 1:
        raise ValueError(f"--margin needs one loss among --methods: the losses measure margins in "
                         f"different units, got {', '.join(losses)}")
    everyone = {k: v for k, v in options.items() if k in ("metric", "normalize")}
    return {m: {"loss": m, **everyone,
                **{k: v for k, v in options.items() if k in experiments.TRAINING_ARGUMENTS[m]}}
            for m in args.methods}


def _data(args):
    return experiments.get_data() if args.data is None else load_mnist(args.data)


def cmd_compare_unseen(args) -> None:
    """Write unseen.csv and unseen.md for ``compare --unseen``."""
    result = comparison.compare(_settings(args), args.seeds, partitions=comparison.PARTITIONS,
                                progress=True, data=_data(args), device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    table = result.table
    table.to_csv(args.out / "unseen.csv", index=False)
    summary = comparison.format_summary(result.summary)
    lines = ["# Digits never seen in training\n\nPartitions (training digits | unseen digits): "
             + "; ".join(f"{''.join(map(str, a))} | {''.join(map(str, b))}"
                         for a, b in comparison.PARTITIONS)
             + f". Seeds: {' '.join(map(str, args.seeds))}. Mean ± std over partitions and seeds.\n",
             comparison.to_markdown(summary)]
    pairs = [(a, b) for a, b in [("triplet", "contrastive"), ("contrastive", "pixels"),
                                 ("triplet", "pixels")] if a in args.methods and b in args.methods]
    for a, b in pairs:
        lines.append(f"\n## {a} − {b}, paired by partition and seed (95 % bootstrap interval)\n\n"
                     "| score | mean | interval | ahead |\n|---|---|---|---|")
        for score in experiments.UNSEEN_SCORES:
            d = comparison.paired_difference(table, a, b, score)
            lines.append(f"| {score} | {d['mean']:+.4f} | [{d['low']:+.4f}, {d['high']:+.4f}] "
                         f"| {d['verdict']} |")
    (args.out / "unseen.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.out / 'unseen.csv'} and {args.out / 'unseen.md'}")


def cmd_compare(args) -> None:
    """Write results.csv, summary.md and figures for ``compare``."""
    from . import plotting

    if args.unseen:
        return cmd_compare_unseen(args)
    mnist = _data(args)
    result = comparison.compare(_settings(args), args.seeds, progress=True, data=mnist,
                                device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(args.out / "results.csv", index=False)
    summary = comparison.format_summary(result.summary)
    spread = "mean ± std" if len(args.seeds) > 1 else "one seed"
    (args.out / "summary.md").write_text(
        f"# Contrastive vs triplet loss\n\nSeeds: {' '.join(map(str, args.seeds))}; "
        f"test split of {mnist.source} MNIST; {spread}.\n\n" + comparison.to_markdown(summary))
    figures = plotting.comparison_figures(result, mnist.test, experiments.fixed_test_pairs(mnist.test))
    for name, fig in figures.items():
        fig.savefig(args.out / f"{name}.png", dpi=120, bbox_inches="tight")
    print(comparison.to_markdown(summary))
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'summary.md'} and "
          + ", ".join(f"{name}.png" for name in figures))


def cmd_train(args, parser) -> None:
    """Train one model and save its checkpoint, for ``train``."""
    try:
        result = experiments.run(args.loss, seed=args.seed, progress=True, data=_data(args),
                                 device=args.device, **_options(args))
    except ValueError as err:
        parser.error(str(err))
    save_checkpoint(args.out, result.model, **{k: v for k, v in result.config.items()
                                               if isinstance(v, (int, float, str, bool))})
    print(", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    print(f"trained in {result.seconds:.1f} s; saved {args.out}")


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare":
        if args.seeds == []:
            parser.error("--seeds needs at least one seed")
        try:
            cmd_compare(args)
        except ValueError as err:
            parser.error(str(err))
    else:
        cmd_train(args, parser)
    return 0


if __name__ == "__main__":
    sys.exit(main())

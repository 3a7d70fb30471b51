"""experiments and the command line: one protocol, same numbers from the API and the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from siamese_lib import comparison, experiments, online_losses, sampling, tuning
from siamese_lib.__main__ import main
from siamese_lib.models import embed, load_checkpoint


def test_run_argument_errors(small_mnist):
    with pytest.raises(ValueError, match="loss must be one of"):
        experiments.run("arcface", data=small_mnist)
    with pytest.raises(ValueError, match=r"mining \(for the contrastive loss\) must be one of"):
        experiments.run("contrastive", mining="semi_hard", data=small_mnist)
    with pytest.raises(ValueError, match=r"mining \(for the triplet loss\) must be one of"):
        experiments.run("triplet", mining="hard", data=small_mnist)  # the old name is gone
    with pytest.raises(ValueError, match="margin must be a number > 0"):
        experiments.run("triplet", margin=-1.0, data=small_mnist)
    with pytest.raises(ValueError, match="margin must be given for loss='triplet', metric='hamming'"):
        tuning.default_margin("triplet", "hamming", False)
    with pytest.raises(ValueError, match="loss='contrastive' does not use soft"):
        experiments.run("contrastive", soft=True, data=small_mnist)
    with pytest.raises(ValueError, match="soft=True .* got mining='semi_hard'"):
        experiments.run("triplet", mining="semi_hard", soft=True, data=small_mnist)
    with pytest.raises(ValueError, match="balance=True .* got mining='random'"):
        experiments.run("contrastive", mining="random", balance=True, data=small_mnist)
    with pytest.raises(ValueError, match="loss='triplet' does not use balance"):
        experiments.run("triplet", balance=True, data=small_mnist)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1), "lr must be a number > 0, got -1"),
    (dict(lr=float("nan")), "lr must be a number > 0, got nan"),
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
    (dict(epochs=2.5), "epochs must be an integer >= 1, got 2.5"),
    (dict(weight_decay=-0.1), "weight_decay must be a number >= 0, got -0.1"),
    (dict(embedding_dim=0), "embedding_dim must be an integer >= 1, got 0"),
    (dict(transform="rotate"), "transform must be 'augment', None or a callable, got 'rotate'"),
    (dict(normalize="yes"), "normalize must be True or False, got 'yes'"),
    (dict(seed=1.5), "seed must be an integer, got 1.5"),
    (dict(metric="hamming"), "metric must be one of"),  # checked before any margin is looked up
])
def test_run_rejects_bad_values_before_training(small_mnist, kwargs, message, monkeypatch):
    monkeypatch.setattr(experiments, "fit", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        experiments.run("triplet", data=small_mnist, **kwargs)


@pytest.mark.parametrize("loss, kwargs, refused", [
    ("pixels", dict(epochs=50, lr=-1, margin=7, mining="semi_hard"), "epochs, lr, margin, mining"),
    ("pixels", dict(transform=None), "transform"),
    ("pixels", dict(embedding_dim=8), "embedding_dim"),
    ("untrained", dict(epochs=3, weight_decay=0.1), "epochs, weight_decay"),
    ("softmax", dict(margin=1.0, mining="batch_hard"), "margin, mining"),
    ("softmax", dict(soft=False), "soft"),
    ("contrastive", dict(soft=False), "soft"),
    ("triplet", dict(balance=False), "balance"),
])
def test_a_method_refuses_the_arguments_it_would_ignore(small_mnist, loss, kwargs, refused, monkeypatch):
    monkeypatch.setattr(experiments, "fit", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=f"loss='{loss}' does not use {refused}: of the training "
                                         "arguments it takes"):
        experiments.run(loss, data=small_mnist, **kwargs)


def test_the_training_arguments_of_each_method_are_arguments_of_run():
    import inspect

    parameters = set(inspect.signature(experiments.run).parameters)
    for method in experiments.LOSSES + experiments.BASELINES:
        assert set(experiments.TRAINING_ARGUMENTS[method]) <= parameters, method


@pytest.mark.filterwarnings("ignore::siamese_lib.training.CollapseWarning")  # batch-hard on tiny data
def test_soft_margin_run_trains_with_the_soft_loss(small_mnist):
    soft = experiments.run("triplet", mining="batch_hard", soft=True, epochs=2, data=small_mnist)
    hinge = experiments.run("triplet", mining="batch_hard", epochs=2, data=small_mnist)
    assert soft.config["soft"] is True and hinge.config["soft"] is False
    assert soft.history["loss"] != hinge.history["loss"]  # another loss, same batches and start
    first = soft.history.steps[0]["loss"]
    assert first > 0.69  # log(1 + e^x) > log 2 = 0.693 while the hardest positive is farther (x > 0)
    assert soft.metrics["precision_at_1"] > 0.3


def test_warm_start_copies_the_initial_weights(small_mnist):
    first = experiments.run("triplet", epochs=1, data=small_mnist)
    untrained = experiments.run("untrained", init=first.model, data=small_mnist)
    for p, q in zip(untrained.model.state_dict().values(), first.model.state_dict().values()):
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()  # the same weights, copied
    assert untrained.metrics == first.metrics
    warm = experiments.run("triplet", mining="batch_hard", epochs=1, init=first.model.state_dict(),
                           data=small_mnist)
    cold = experiments.run("triplet", mining="batch_hard", epochs=1, data=small_mnist)
    assert warm.history["loss"] != cold.history["loss"]
    with pytest.raises(ValueError, match="init must be an EmbeddingNet .* embedding_dim"):
        experiments.run("triplet", epochs=1, embedding_dim=8, init=first.model, data=small_mnist)
    with pytest.raises(ValueError, match="loss='pixels' does not use init"):
        experiments.run("pixels", init=first.model, data=small_mnist)


def test_balanced_contrastive_run_weighs_positives_and_negatives_equally(small_mnist):
    balanced = experiments.run("contrastive", balance=True, epochs=2, data=small_mnist)
    all_pairs = experiments.run("contrastive", epochs=2, data=small_mnist)
    assert balanced.config["balance"] is True and all_pairs.config["balance"] is False
    assert balanced.history["loss"] != all_pairs.history["loss"]
    assert balanced.metrics["precision_at_1"] > 0.3


def test_the_default_margin_trained_with_is_the_best_of_the_stored_sweep(small_mnist, monkeypatch):
    used = []

    class Recording(online_losses.OnlineTripletLoss):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            used.append((self.metric, self.margin))

    monkeypatch.setattr(experiments, "OnlineTripletLoss", Recording)
    sweep = pd.read_csv(Path(experiments.__file__).parent / "evidence" / "margins.csv")
    expected = []
    for metric in ("sqeuclidean", "euclidean"):
        experiments.run("triplet", metric=metric, epochs=1, data=small_mnist)
        rows = sweep[(sweep["loss"] == "triplet") & (sweep["metric"] == metric) & ~sweep["normalize"]]
        means = {m: rows[rows["margin"] == m]["val_map_at_r"].mean() for m in set(rows["margin"])}
        expected.append((metric, max(means, key=means.get)))
    assert used == expected and expected[0][1] != expected[1][1]


def test_a_margin_beyond_the_unit_sphere_is_warned_about(small_mnist):
    # ten classes on the unit sphere keep a Euclidean distance of at most sqrt(20/9) = 1.49
    with pytest.warns(experiments.MarginWarning, match="at most 1.49"):
        experiments.run("contrastive", normalize=True, margin=1.6, epochs=1, data=small_mnist)
    # in two dimensions, ten points on a circle are at most 2 sin(pi / 10) = 0.618 apart
    with pytest.warns(experiments.MarginWarning, match="10 classes in 2 dimensions .* at most 0.618"):
        experiments.run("contrastive", normalize=True, embedding_dim=2, margin=1.0, epochs=1,
                        data=small_mnist)
    # the cosine distance is measured on the sphere whether or not the embeddings are normalised
    with pytest.warns(experiments.MarginWarning, match="cosine distance of at most 1.11"):
        experiments.run("contrastive", metric="cosine", margin=1.5, epochs=1, data=small_mnist)
    with pytest.warns(experiments.MarginWarning, match="at most 2"):  # two classes: antipodes
        experiments.run("contrastive", mining="random", normalize=True, margin=2.5, epochs=1,
                        data=small_mnist, train_classes=[0, 1])


def test_augmentation_is_the_default_and_can_be_switched_off(small_mnist):
    augmented = experiments.run("contrastive", epochs=1, data=small_mnist)
    plain = experiments.run("contrastive", epochs=1, data=small_mnist, transform=None)
    assert augmented.config["augment"] == repr(tuning.AUGMENT)
    assert plain.config["augment"] is None
    assert augmented.metrics != plain.metrics
    assert augmented.history.best_epoch is None  # the last epoch's weights, not a chosen one


def test_unseen_classes(small_mnist, monkeypatch):
    seen = []

    class RecordingPK(sampling.PKSampler):
        def __init__(self, labels, *args, **kwargs):
            seen.append(set(labels.tolist()))
            super().__init__(labels, *args, **kwargs)

    monkeypatch.setattr(experiments, "PKSampler", RecordingPK)
    result = experiments.run("triplet", epochs=1, data=small_mnist, train_classes=range(5))
    assert seen == [{0, 1, 2, 3, 4}]  # trained on digits 0-4 only
    assert result.config["test_classes"] == [5, 6, 7, 8, 9]
    # precision@1 among the test images of digits 5-9, by a brute-force nearest-neighbour loop
    keep = small_mnist.test.labels >= 5
    z, labels = embed(result.model, small_mnist.test.images[keep]), small_mnist.test.labels[keep]
    hits = []
    for q in range(len(z)):
        d = ((z - z[q]) ** 2).sum(1)
        d[q] = float("inf")
        hits.append(labels[int(d.argmin())] == labels[q])
    assert result.metrics["precision_at_1"] == pytest.approx(float(sum(hits)) / len(hits))


def test_compare_table_and_summary(small_mnist):
    result = comparison.compare(["contrastive", "triplet"], seeds=[0, 1], epochs=1, data=small_mnist)
    table = result.table
    assert list(table["method"]) == ["contrastive", "contrastive", "triplet", "triplet"]
    assert set(experiments.SCORES) | {"seconds"} <= set(table.columns)
    summary = result.summary
    row = table[table["method"] == "triplet"]["precision_at_1"]
    assert summary.loc["triplet", ("precision_at_1", "mean")] == pytest.approx(row.mean())
    assert summary.loc["triplet", ("precision_at_1", "std")] == pytest.approx(row.std())
    text = comparison.to_markdown(comparison.format_summary(summary))
    assert "±" in text and text.count("\n") == 4
    one_seed = comparison.summarize(table[table["seed"] == 0])
    assert "±" not in comparison.to_markdown(comparison.format_summary(one_seed))


def test_cli_help_and_bad_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--methods", "--seeds", "--out", "--epochs", "--no-augment", "--data", "--metric",
                   "--margin", "--mining", "--normalize", "--unseen"):
        assert option in out
    for bad in (["compare", "--methods", "hinge"], ["train"], ["train", "--loss", "triplet", "--epochs", "0"],
                ["train", "--loss", "contrastive", "--mining", "semi_hard"], ["fly"],
                ["train", "--loss", "triplet", "--metric", "manhattan", "--normalize"],
                ["compare", "--methods", "contrastive", "triplet", "--margin", "2"]):
        with pytest.raises(SystemExit) as exit_info:
            main(bad)
        assert exit_info.value.code == 2, bad
        assert "error" in capsys.readouterr().err


def test_cli_compare_writes_the_same_numbers_as_the_api(tmp_path):
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "siamese_lib", "compare", "--methods", "contrastive", "triplet",
         "--seeds", "0", "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})  # same thread count as this process (conftest)
    assert completed.returncode == 0, completed.stderr
    for name in ("results.csv", "summary.md", "roc.png", "embedding.png"):
        assert (out / name).is_file(), name
    from_cli = pd.read_csv(out / "results.csv")
    from_api = comparison.compare(["contrastive", "triplet"], seeds=[0], epochs=1).table
    for metric in experiments.SCORES:
        assert from_cli[metric].tolist() == pytest.approx(from_api[metric].tolist(), abs=1e-12), metric


def test_cli_train_saves_a_checkpoint(tmp_path):
    path = tmp_path / "triplet.pt"
    assert main(["train", "--loss", "triplet", "--mining", "semi_hard", "--epochs", "1",
                 "--out", str(path)]) == 0
    model, meta = load_checkpoint(path)
    assert meta["mining"] == "semi_hard" and model.embedding_dim == tuning.EMBEDDING_DIM
    assert meta["augment"] == repr(tuning.AUGMENT)
    assert main(["train", "--loss", "triplet", "--epochs", "1", "--no-augment", "--out", str(path)]) == 0
    assert "augment" not in load_checkpoint(path)[1]


def test_cli_compare_unseen_writes_the_unseen_table_and_changes_nothing_else(tmp_path, monkeypatch):
    out = tmp_path / "results"
    assert main(["compare", "--unseen", "--methods", "pixels", "triplet", "--seeds", "0", "--epochs", "1",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "unseen.csv")
    assert len(table) == 2 * len(comparison.PARTITIONS)
    assert list(table.columns[:3]) == ["method", "partition", "seed"]
    pixels = table[table["method"] == "pixels"]
    from_api = comparison.compare(["pixels"], seeds=(0,), partitions=comparison.PARTITIONS).table
    assert pixels["map_at_r"].tolist() == pytest.approx(from_api["map_at_r"].tolist(), abs=1e-12)
    text = (out / "unseen.md").read_text()
    assert "triplet − pixels, paired by partition and seed" in text and "| one_shot |" in text
    # --unseen changes the split only: methods, seeds and training options are those of compare
    calls = []

    class Recorded(Exception):
        pass

    def record(settings, seeds, **kwargs):
        calls.append((settings, seeds, "partitions" in kwargs))
        raise Recorded

    monkeypatch.setattr(comparison, "compare", record)
    for flag in ([], ["--unseen"]):
        with pytest.raises(Recorded):
            main(["compare", *flag, "--epochs", "2", "--out", str(out)])
    (closed, closed_seeds, _), (open_, open_seeds, partitioned) = calls
    assert closed == open_ and closed_seeds == open_seeds and partitioned
    assert closed["pixels"] == {"loss": "pixels"} and closed["triplet"]["epochs"] == 2

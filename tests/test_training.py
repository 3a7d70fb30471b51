"""models and training: weight sharing, determinism, checkpoints, early stopping, collapse, errors."""

import warnings

import pytest
import torch
from torch import nn

from siamese_lib import experiments, models, online_losses, training
from siamese_lib.models import embed


def _triplet():
    """The batch-all triplet loss with a margin of 1, the scale of the toy embeddings here."""
    return online_losses.OnlineTripletLoss(margin=1.0)

def test_siamese_one_pass_equals_one_call_per_branch():
    torch.manual_seed(0)
    encoder = models.EmbeddingNet(16).eval()  # in eval mode batch norm uses fixed statistics
    x1, x2, x3 = torch.randn(3, 5, 1, 28, 28).unbind(0)
    z1, z2, z3 = models.SiameseNetwork(encoder)(x1, x2, x3)
    for z, x in ((z1, x1), (z2, x2), (z3, x3)):
        torch.testing.assert_close(z, encoder(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least one batch"):
        models.SiameseNetwork(encoder)()


def test_embedding_net_options():
    z = models.EmbeddingNet(8, normalize=True)(torch.randn(4, 1, 28, 28))
    assert z.shape == (4, 8)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    with pytest.raises(ValueError, match="embedding_dim must be an integer >= 1, got 0"):
        models.EmbeddingNet(0)


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_same_thread_count_same_weights_and_metrics(small_mnist, threads):
    """What training.py documents: identical weights on one CPU with one thread count (1 or 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        runs = [experiments.run("triplet", epochs=2, seed=3, data=small_mnist) for _ in range(2)]
    finally:
        torch.set_num_threads(before)
    assert runs[0].metrics == runs[1].metrics
    for p, q in zip(runs[0].model.state_dict().values(), runs[1].model.state_dict().values()):
        assert torch.equal(p, q)
    other = experiments.run("triplet", epochs=2, seed=4, data=small_mnist)
    assert other.metrics != runs[0].metrics


def test_cublas_workspace_is_set_by_fit_where_it_can_act_and_never_on_import(monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    imported = subprocess.run([sys.executable, "-c", "import os, siamese_lib; "
                               "print(os.environ.get('CUBLAS_WORKSPACE_CONFIG'))"],
                              capture_output=True, text=True, check=True, env=dict(os.environ))
    assert imported.stdout.strip() == "None"  # importing sets nothing
    training._deterministic_cublas(torch.device("cpu"))
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ  # a CPU run needs nothing
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    training._deterministic_cublas(torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == training.CUBLAS_WORKSPACE
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)  # maybe too late: set it, say so
    with pytest.warns(RuntimeWarning, match="not be deterministic"):
        training._deterministic_cublas(torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == training.CUBLAS_WORKSPACE


# batch-hard with squared distances may collapse in two epochs (chapter 7 shows it): not this test's subject
@pytest.mark.filterwarnings("ignore::siamese_lib.training.CollapseWarning")
@pytest.mark.parametrize("loss, mining", [(loss, mining) for loss in experiments.LOSSES
                                          for mining in experiments.MINING[loss]])
def test_every_loss_and_mining_trains(small_mnist, loss, mining):
    result = experiments.run(loss, mining=mining, epochs=2, data=small_mnist)
    assert len(result.history) == 2
    assert set(experiments.SCORES) <= set(result.metrics)
    assert all(0 <= result.metrics[m] <= 1 for m in experiments.SCORES)
    assert result.config["mining"] == mining
    assert result.metrics["precision_at_1"] > 0.3  # far above chance (0.1) after two short epochs


def test_checkpoint_round_trip(tmp_path, small_mnist):
    result = experiments.run("contrastive", epochs=1, data=small_mnist, embedding_dim=6, normalize=True)
    path = tmp_path / "model.pt"
    models.save_checkpoint(path, result.model, loss="contrastive")
    model, meta = models.load_checkpoint(path, device=next(result.model.parameters()).device)
    assert meta["loss"] == "contrastive" and meta["embedding_dim"] == 6 and meta["normalize"] is True
    images = small_mnist.test.images
    assert torch.equal(embed(model, images), embed(result.model, images))


def test_history_and_scheduler_order(small_mnist):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        result = experiments.run("contrastive", epochs=2, data=small_mnist)
    h = result.history
    assert {"epoch", "loss", "spread", "seconds", "val_precision_at_1"} <= set(h.keys())
    assert h["epoch"] == [1, 2]
    assert h.to_frame().shape[0] == 2


def test_history_records_every_step():
    class Scaled(nn.Module):  # embeddings with a known spread: the scale times a fixed pattern
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.scale * x.flatten(1)[:, :4]

    batches = _toy_batches(3)
    criterion = online_losses.OnlineTripletLoss("batch_all", margin=1.0, metric="euclidean")
    model = Scaled()
    history = training.fit(model, batches, criterion, epochs=2, lr=0.0, progress=False)  # lr 0: fixed model
    assert [(s["epoch"], s["step"]) for s in history.steps] == [(e, i) for e in (1, 2) for i in (1, 2, 3)]
    for record, ((x,), (labels,)) in zip(history.steps, batches * 2):
        z = x.flatten(1)[:, :4]
        assert record["loss"] == pytest.approx(criterion(z, labels).item(), rel=1e-6)
        expected_spread = torch.cdist(z, z).sum().item() / (len(z) * (len(z) - 1))  # hand-written mean
        assert record["spread"] == pytest.approx(expected_spread, rel=1e-5)
    assert history["spread"] == [history.steps[2]["spread"], history.steps[5]["spread"]]  # last step
    assert history["loss"][0] == pytest.approx(sum(s["loss"] for s in history.steps[:3]) / 3, rel=1e-6)


def _toy_batches(n_batches=4):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_batches, 16, 1, 28, 28, generator=g)
    labels = torch.arange(16) % 4
    return [((x[i],), (labels,)) for i in range(n_batches)]


def test_early_stopping_restores_the_best_epoch():
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.6, 0.9])
    model = models.EmbeddingNet(4)
    snapshots = []

    def validate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"precision_at_1": next(scores)}

    history = training.fit(model, _toy_batches(), online_losses.OnlineTripletLoss("batch_all"), epochs=6,
                           validate=validate, patience=2, progress=False)
    assert history.stopped_early and len(history) == 4 and history.best_epoch == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k])


def test_collapse_is_detected():
    class Constant(nn.Module):  # every image embedded at the same point: collapse by construction
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return self.w * torch.zeros(len(x), 4, device=x.device) + 1.0

    with pytest.warns(training.CollapseWarning, match="collapsed"):
        history = training.fit(Constant(), _toy_batches(),
                               online_losses.OnlineTripletLoss("batch_hard", margin=0.5),
                               epochs=1, progress=False)
    assert history.collapsed
    assert history["loss"][0] == pytest.approx(0.5)  # the loss is pinned at the margin


def test_collapse_check_measures_spread_in_the_units_of_the_margin():
    class TwoPoints(nn.Module):  # half the batch at -0.05, half at +0.05: Euclidean gaps of 0.1
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            side = (torch.arange(len(x), device=x.device) % 2).float()[:, None] - 0.5
            return self.w * 0 + 0.1 * side * torch.ones(len(x), 4, device=x.device) / 2

    # mean Euclidean distance 0.053 is above 1% of a margin of 4, but the loss measures squared
    # distances, whose mean 0.0053 is far below 1% of 4 squared units: collapsed relative to the margin
    with pytest.warns(training.CollapseWarning, match="sqeuclidean"):
        training.fit(TwoPoints(), _toy_batches(1), online_losses.OnlineTripletLoss(margin=4.0), epochs=1,
                     progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", training.CollapseWarning)
        loss = online_losses.OnlineTripletLoss(margin=4.0, metric="euclidean")
        training.fit(TwoPoints(), _toy_batches(1), loss, epochs=1, progress=False)


def test_no_false_collapse_alarm(small_mnist):
    with warnings.catch_warnings():
        warnings.simplefilter("error", training.CollapseWarning)
        experiments.run("triplet", epochs=2, data=small_mnist)


def test_nan_loss_is_an_error():
    def nan_loss(z, labels):
        return z.sum() * float("nan")

    advice = r"the loss is nan at epoch 1 \(step 1\); lower the learning rate"
    with pytest.raises(FloatingPointError, match=advice):
        training.fit(models.EmbeddingNet(4), _toy_batches(), nan_loss, epochs=1, progress=False)


def test_nan_embeddings_get_the_same_advice():
    class Diverged(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.w * torch.full((len(x), 4), float("nan"), device=x.device)

    with pytest.raises(FloatingPointError, match="embeddings are not finite at epoch 1; lower the learning"):
        training.fit(Diverged(), _toy_batches(), _triplet(), epochs=1, progress=False)


def test_fit_argument_errors():
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        training.fit(models.EmbeddingNet(4), _toy_batches(), _triplet(), epochs=0)
    with pytest.raises(ValueError, match="at least one batch"):
        training.fit(models.EmbeddingNet(4), [], _triplet(), epochs=1, progress=False)


def test_deterministic_mode_is_restored():
    before = torch.are_deterministic_algorithms_enabled()
    training.fit(models.EmbeddingNet(4), _toy_batches(1), _triplet(), epochs=1,
                 progress=False, device="cpu")
    assert torch.are_deterministic_algorithms_enabled() == before


def test_select_device(monkeypatch):
    assert training.select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.select_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert training.select_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert training.select_device() == torch.device("cpu")


def test_fit_leaves_the_callers_generator_alone():
    model = models.EmbeddingNet(4)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    training.fit(model, _toy_batches(1), _triplet(), epochs=1, progress=False, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_monitor_none_keeps_the_last_epoch():
    model = models.EmbeddingNet(4)
    snapshots = []

    def validate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"precision_at_1": 1.0 / len(snapshots)}  # the first epoch looks best

    history = training.fit(model, _toy_batches(), online_losses.OnlineTripletLoss("batch_all"), epochs=3,
                           validate=validate, monitor=None, progress=False)
    assert len(history) == 3 and history.best_epoch is None and not history.stopped_early
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[-1][k])


def test_monitor_and_patience_errors():
    def validate(m):
        return {"map_at_r": 0.5}

    with pytest.raises(ValueError, match="monitor must name a metric that validate returns"):
        training.fit(models.EmbeddingNet(4), _toy_batches(1), _triplet(), epochs=1,
                     validate=validate, progress=False)
    with pytest.raises(ValueError, match="patience needs validate and monitor"):
        training.fit(models.EmbeddingNet(4), _toy_batches(1), _triplet(), epochs=1,
                     validate=validate, monitor=None, patience=2, progress=False)


def test_progress_in_a_log_is_one_line_per_epoch(capsys):
    training.fit(models.EmbeddingNet(4), _toy_batches(2), _triplet(), epochs=3,
                 progress=True)
    err = capsys.readouterr().err  # captured: not a terminal
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]

"""info_nce: NT-Xent and SupCon against loops, PML, the soft triplet loss, small temperatures, bad input."""

import math
import warnings

import pytest
import torch
from test_losses import METRICS, hand_distance

from siamese_lib import info_nce, losses, training
from siamese_lib._checks import value_checks
from siamese_lib.distances import paired_distance

TEMPERATURES = (1.0, 0.1, 0.01)


def similarity(u, v, metric):
    """The loss's similarity of two plain lists: the cosine similarity, or minus the distance."""
    d = hand_distance(u, v, metric)
    return 1 - d if metric == "cosine" else -d


def loop_nt_xent(pts, lab, tau, metric):
    """One term per ordered (anchor, positive) pair, row-major; the denominator is {p} and N(i)."""
    terms = []
    for i in range(len(pts)):
        s = [similarity(pts[i], pts[k], metric) for k in range(len(pts))]
        negatives = [n for n in range(len(pts)) if lab[n] != lab[i]]
        for p in range(len(pts)):
            if p == i or lab[p] != lab[i]:
                continue
            denominator = [p] + negatives
            c = max(s[k] for k in denominator)  # a shift that keeps exp from underflowing; it cancels
            total = math.fsum(math.exp((s[k] - c) / tau) for k in denominator)
            terms.append(-((s[p] - c) / tau - math.log(total)))
    return terms


def loop_supcon(pts, lab, tau, metric):
    """One loss per anchor with a positive, in row order; the denominator is every k != i."""
    values = []
    for i in range(len(pts)):
        positives = [p for p in range(len(pts)) if p != i and lab[p] == lab[i]]
        if not positives:
            continue
        others = [k for k in range(len(pts)) if k != i]
        s = [similarity(pts[i], pts[k], metric) for k in range(len(pts))]
        c = max(s[k] for k in others)
        total = math.fsum(math.exp((s[k] - c) / tau) for k in others)
        values.append(-sum((s[p] - c) / tau - math.log(total) for p in positives) / len(positives))
    return values


def random_batch(seed, n=12, dim=3):
    """Random float64 points; labels with three classes of one row, and classes of 2, 3 and 4, shuffled."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 5])[torch.randperm(n, generator=g)]
    return x, labels


def approx(values):
    return pytest.approx(values, rel=1e-9, abs=1e-9)


# ---- against hand-written loops ----------------------------------------------------------

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("tau", TEMPERATURES)
@pytest.mark.parametrize("seed", range(2))
def test_nt_xent_matches_a_loop(metric, tau, seed):
    x, labels = random_batch(seed)
    terms = loop_nt_xent(x.tolist(), labels.tolist(), tau, metric)
    assert info_nce.nt_xent_loss(x, labels, tau, metric, "none").tolist() == approx(terms)
    assert info_nce.nt_xent_loss(x, labels, tau, metric).item() == approx(sum(terms) / len(terms))
    assert info_nce.nt_xent_loss(x, labels, tau, metric, "sum").item() == approx(sum(terms))
    assert info_nce.NTXentLoss(tau, metric)(x, labels).item() == approx(sum(terms) / len(terms))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("tau", TEMPERATURES)
@pytest.mark.parametrize("seed", range(2))
def test_supcon_matches_a_loop(metric, tau, seed):
    x, labels = random_batch(seed)
    values = loop_supcon(x.tolist(), labels.tolist(), tau, metric)
    assert len(values) == 9  # the three rows of a class of their own have no term
    assert info_nce.supcon_loss(x, labels, tau, metric, "none").tolist() == approx(values)
    assert info_nce.supcon_loss(x, labels, tau, metric).item() == approx(sum(values) / len(values))
    assert info_nce.supcon_loss(x, labels, tau, metric, "sum").item() == approx(sum(values))
    assert info_nce.SupConLoss(tau, metric)(x, labels).item() == approx(sum(values) / len(values))


@pytest.mark.parametrize("metric", METRICS)
def test_two_views_layout(metric):
    """labels=None is views_labels: row i and row i + n; with one positive each, NT-Xent is SupCon."""
    assert info_nce.views_labels(4).tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    g = torch.Generator().manual_seed(7)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    labels = info_nce.views_labels(5)
    terms = loop_nt_xent(x.tolist(), labels.tolist(), 0.2, metric)
    assert len(terms) == 10
    assert info_nce.nt_xent_loss(x, None, 0.2, metric, "none").tolist() == approx(terms)
    assert info_nce.NTXentLoss(0.2, metric)(x).item() == approx(sum(terms) / 10)
    assert info_nce.supcon_loss(x, labels, 0.2, metric, "none").tolist() == approx(terms)


def test_the_two_losses_differ_with_several_positives():
    """SupCon keeps the anchor's other positives in the denominator, NT-Xent does not."""
    x, labels = random_batch(0)
    nt_xent = info_nce.nt_xent_loss(x, labels, reduction="none")
    supcon = info_nce.supcon_loss(x, labels, reduction="none")
    assert len(nt_xent) == 2 * (3 + 1 + 6) and len(supcon) == 9
    assert info_nce.supcon_loss(x, labels).item() > info_nce.nt_xent_loss(x, labels).item()


# ---- against pytorch-metric-learning -----------------------------------------------------

def _pml(loss_class, tau, x, labels, every=False):
    from pytorch_metric_learning import reducers

    options = {"reducer": reducers.DoNothingReducer()} if every else {}
    out = loss_class(temperature=tau, **options)(x, labels)
    if every:
        out = out["loss"]
        assert out["losses"].dtype == torch.float64
        return out["losses"], out["indices"]
    assert out.dtype == torch.float64  # PML computed in float64 too
    return out


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5])
@pytest.mark.parametrize("seed", range(3))
def test_matches_pytorch_metric_learning(tau, seed):
    from pytorch_metric_learning import losses as pml

    from siamese_lib.mining import positive_pairs

    g = torch.Generator().manual_seed(seed)
    x, labels = torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(0, 6, (16,), generator=g)
    views = torch.randn(12, 5, generator=g, dtype=torch.float64)
    for z, lab in ((x, labels), (views, info_nce.views_labels(6))):
        assert info_nce.nt_xent_loss(z, lab, tau).item() == pytest.approx(
            _pml(pml.NTXentLoss, tau, z, lab).item(), abs=1e-9)
        assert info_nce.supcon_loss(z, lab, tau).item() == pytest.approx(
            _pml(pml.SupConLoss, tau, z, lab).item(), abs=1e-9)
        # the same terms in the same order: (anchor, positive) pairs; anchors, zeros of PML left out
        theirs, (anchor, positive) = _pml(pml.NTXentLoss, tau, z, lab, every=True)
        ours_a, ours_p = positive_pairs(lab)
        assert torch.equal(anchor, ours_a) and torch.equal(positive, ours_p)
        assert info_nce.nt_xent_loss(z, lab, tau, reduction="none").tolist() == pytest.approx(
            theirs.tolist(), abs=1e-9)
        theirs, _ = _pml(pml.SupConLoss, tau, z, lab, every=True)
        has_positive = (lab[:, None] == lab[None, :]).sum(dim=1) > 1
        assert (theirs[~has_positive] == 0).all()
        assert info_nce.supcon_loss(z, lab, tau, reduction="none").tolist() == pytest.approx(
            theirs[has_positive].tolist(), abs=1e-9)


def test_supcon_differs_from_pytorch_metric_learning_only_where_documented():
    from pytorch_metric_learning import losses as pml

    # a batch of one class: PML returns 0, Khosla et al.'s formula at least log |P(i)|
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    one_class = torch.zeros(5, dtype=torch.long)
    assert _pml(pml.SupConLoss, 0.1, x, one_class).item() == 0
    assert info_nce.supcon_loss(x, one_class).item() >= math.log(4)
    # NT-Xent agrees there: every term is -log 1
    assert _pml(pml.NTXentLoss, 0.1, x, one_class).item() == 0
    assert info_nce.nt_xent_loss(x, one_class).item() == 0
    # an anchor whose loss rounds to exactly 0 counts here and not in PML's AvgNonZeroReducer
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 2, 2])
    every = info_nce.supcon_loss(z, labels, 0.001, reduction="none")
    assert every[:2].tolist() == [0.0, 0.0] and (every[2:] > 0).all()
    assert info_nce.supcon_loss(z, labels, 0.001).item() == pytest.approx(every.sum().item() / 4)
    assert _pml(pml.SupConLoss, 0.001, z, labels).item() == pytest.approx(every.sum().item() / 2)


# ---- the bridge to the soft-margin triplet loss, and small temperatures -----------------

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_one_positive_one_negative_is_the_soft_margin_triplet_loss(metric, tau):
    """Rows a, p, n with labels [0, 0, 1]: the (a, p) term is log(1 + e^{(d_ap - d_an) / tau})."""
    g = torch.Generator().manual_seed(1)
    anchor, positive, negative = (torch.randn(1, 4, generator=g, dtype=torch.float64) for _ in range(3))
    batch, labels = torch.cat([anchor, positive, negative]), torch.tensor([0, 0, 1])
    a_p = info_nce.nt_xent_loss(batch, labels, tau, metric, "none")[0]  # (a, p) is the first pair
    assert info_nce.supcon_loss(batch, labels, tau, metric, "none")[0].item() == pytest.approx(a_p.item())
    d_ap, d_an = (paired_distance(anchor, other, metric) for other in (positive, negative))
    assert a_p.item() == pytest.approx(math.log1p(math.exp((d_ap - d_an).item() / tau)), abs=1e-12)
    if tau == 1.0:
        soft = losses.triplet_loss(anchor, positive, negative, metric=metric, soft=True)
        assert a_p.item() == pytest.approx(soft.item(), abs=1e-12)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("tau", [1.0, 0.1, 0.01, 0.001])
def test_small_temperatures_tend_to_the_hardest_negative(metric, tau):
    r"""max(0, max_n s_in - s_ip) <= tau l_ip <= that + tau log(1 + |N(i)|), and likewise for SupCon.

    So tau times the loss tends to a hinge on the hardest negative (hardest other row for SupCon).
    """
    x, labels = random_batch(3)
    pts, lab = x.tolist(), labels.tolist()
    s = [[similarity(u, v, metric) for v in pts] for u in pts]
    terms = iter(info_nce.nt_xent_loss(x, labels, tau, metric, "none").tolist())
    per_anchor = iter(info_nce.supcon_loss(x, labels, tau, metric, "none").tolist())
    for i in range(len(pts)):
        negatives = [s[i][n] for n in range(len(pts)) if lab[n] != lab[i]]
        positives = [s[i][p] for p in range(len(pts)) if p != i and lab[p] == lab[i]]
        for s_ip in positives:
            hinge = max(0.0, max(negatives) - s_ip)
            assert hinge - 1e-9 <= tau * next(terms) <= hinge + tau * math.log(1 + len(negatives)) + 1e-9
        if positives:
            hardest = max(s[i][k] for k in range(len(pts)) if k != i) - sum(positives) / len(positives)
            assert hardest - 1e-9 <= tau * next(per_anchor) <= hardest + tau * math.log(len(pts) - 1) + 1e-9
    assert next(terms, None) is None and next(per_anchor, None) is None


def test_the_gradient_weight_moves_to_the_hardest_negative_as_the_temperature_falls():
    r"""d l_ap / d s_an = w_n / tau, w the softmax; w_n / w_n' = e^{(s_an - s_an') / tau}.

    With s = -||x_a - x_n||^2 the gradient on x_n has norm 2 (w_n / tau) ||x_a - x_n||, which
    gives the weights back from autograd.
    """
    x = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.0, 1.5], [0.0, -2.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 2, 3])  # an anchor, its positive, and negatives at d = 1, 2.25, 4
    d = torch.tensor([0.25, 1.0, 2.25, 4.0], dtype=torch.float64)  # to rows 1-4
    shares = []
    for tau in (2.0, 1.0, 0.5, 0.2, 0.1):
        z = x.clone().requires_grad_(True)
        info_nce.nt_xent_loss(z, labels, tau, "sqeuclidean", "none")[0].backward()  # the (0, 1) term
        weights = tau * z.grad[2:].norm(dim=1) / (2 * d[1:].sqrt())
        softmax = torch.softmax(-d / tau, dim=0)
        assert weights.tolist() == pytest.approx(softmax[1:].tolist(), rel=1e-9)
        assert (weights[0] / weights[1:]).tolist() == pytest.approx(
            [math.exp((2.25 - 1) / tau), math.exp((4 - 1) / tau)], rel=1e-9)
        shares.append((weights[0] / weights.sum()).item())
    assert shares == sorted(shares) and shares[-1] > 0.999


# ---- finite values and gradients where embeddings coincide -------------------------------

def _coinciding(dtype):
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2), dtype=dtype)
    x[2] = x[0]  # a positive pair at distance 0
    x[5] = x[1]  # a negative pair at distance 0
    return x


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("tau", [0.1, 0.01])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradients_where_embeddings_coincide(metric, tau, dtype):
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    batches = {"identical": (torch.full((6, 3), 0.7, dtype=dtype), labels),
               "zero": (torch.zeros(6, 3, dtype=dtype), labels),
               "two rows coincide": (_coinciding(dtype), labels),
               "one class": (_coinciding(dtype), torch.zeros(6, dtype=torch.long))}
    for name, (x, lab) in batches.items():
        for fn in (info_nce.nt_xent_loss, info_nce.supcon_loss):
            z = x.clone().requires_grad_(True)
            loss = fn(z, lab, tau, metric)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(z.grad).all(), (name, fn.__name__)
    z = torch.full((6, 3), 0.7, dtype=dtype, requires_grad=True)
    info_nce.nt_xent_loss(z, None, tau, metric).backward()
    assert torch.isfinite(z.grad).all()


def test_identical_embeddings_cost_log_of_the_denominator_size():
    """All similarities equal: NT-Xent is log(1 + |N(i)|), SupCon log(B - 1), whatever the temperature."""
    x, labels = torch.ones(6, 2, dtype=torch.float64), torch.tensor([0, 0, 0, 1, 1, 2])
    nt_xent = info_nce.nt_xent_loss(x, labels, 0.01, "euclidean", "none")
    assert nt_xent.tolist() == pytest.approx([math.log(4)] * 6 + [math.log(5)] * 2)
    assert info_nce.supcon_loss(x, labels, 0.01).item() == pytest.approx(math.log(5))


# ---- the modules, and training --------------------------------------------------------------

def test_modules_keep_their_options():
    loss = info_nce.NTXentLoss(0.5, "sqeuclidean", "sum")
    assert (loss.temperature, loss.metric, loss.reduction) == (0.5, "sqeuclidean", "sum")
    assert repr(loss) == "NTXentLoss(temperature=0.5, metric='sqeuclidean', reduction='sum')"
    assert repr(info_nce.SupConLoss()) == "SupConLoss(temperature=0.1, metric='cosine', reduction='mean')"
    # the scale of fit's collapse check: 1 for the cosine distance, the temperature for the others
    for cls in (info_nce.NTXentLoss, info_nce.SupConLoss):
        assert cls(0.2).margin == 1.0
        assert [cls(0.2, m).margin for m in ("sqeuclidean", "euclidean", "manhattan")] == [0.2] * 3


def _linear_batches(collapsed: bool, views: bool):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    if collapsed:  # every input maps to the same embedding
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.ones_(model.bias)
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    batches = [((torch.randn(8, 4, generator=g),), () if views else (labels,)) for _ in range(3)]
    return model, batches


@pytest.mark.parametrize("views", [False, True])
def test_fit_trains_with_the_modules_and_reads_their_scale(views):
    for criterion in (info_nce.NTXentLoss(0.5), info_nce.SupConLoss(0.5, "sqeuclidean")):
        if views and isinstance(criterion, info_nce.SupConLoss):
            continue  # SupCon needs labels
        model, batches = _linear_batches(collapsed=False, views=views)
        with warnings.catch_warnings():
            warnings.simplefilter("error", training.CollapseWarning)
            history = training.fit(model, batches, criterion, epochs=2, lr=1e-2, monitor=None,
                                   progress=False, device="cpu")
        assert all(math.isfinite(v) for v in history["loss"])
        model, batches = _linear_batches(collapsed=True, views=views)
        with pytest.warns(training.CollapseWarning, match=f"against a margin of {criterion.margin:g}"):
            training.fit(model, batches, criterion, epochs=1, lr=1e-6, monitor=None, progress=False,
                         device="cpu")


# ---- bad input --------------------------------------------------------------------------------

X, LABELS = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
_NO_POSITIVE = r"labels must give at least one row a positive \(another row with its label\), got "
BAD = [
    (dict(temperature=0), r"temperature must be a number > 0, got 0$"),
    (dict(temperature=-0.1), r"temperature must be a number > 0, got -0.1$"),
    (dict(temperature=float("nan")), r"temperature must be a number > 0, got nan$"),
    (dict(temperature="0.1"), r"temperature must be a number > 0, got '0.1'$"),
    (dict(temperature=True), r"temperature must be a number > 0, got True$"),
    (dict(metric="cos"), r"metric must be one of \('euclidean', 'sqeuclidean', 'manhattan', 'cosine'\), "
                         r"got 'cos'$"),
    (dict(reduction="mean_nonzero"), r"reduction must be one of \('mean', 'sum', 'none'\), "
                                     r"got 'mean_nonzero'$"),
    (dict(labels=torch.tensor([0, 0, 1])), r"labels must have one entry per row \(4\), got 3$"),
    (dict(labels=LABELS[None]), r"labels must be 1-D, got shape \(1, 4\)$"),
    (dict(labels=torch.arange(4)), _NO_POSITIVE + "4 rows, each with a label of its own$"),
    (dict(embeddings=X[0]), r"embeddings must be 2-D \(batch, dim\), got shape \(3,\)$"),
    (dict(embeddings=X.long()), r"embeddings must be a floating tensor, got dtype torch.int64$"),
    (dict(embeddings=torch.full((4, 3), float("nan"))), r"embeddings must be finite, got NaN or inf"),
    (dict(embeddings=X[:1], labels=LABELS[:1]), _NO_POSITIVE + "a single row$"),
]


@pytest.mark.parametrize("fn", [info_nce.nt_xent_loss, info_nce.supcon_loss])
@pytest.mark.parametrize("bad, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_names_the_argument(fn, bad, message):
    arguments = {"embeddings": X, "labels": LABELS, **bad}
    with pytest.raises(ValueError, match=message):
        fn(**arguments)
    options = {k: v for k, v in bad.items() if k in ("temperature", "metric", "reduction")}
    cls = info_nce.NTXentLoss if fn is info_nce.nt_xent_loss else info_nce.SupConLoss
    with pytest.raises(ValueError, match=message):
        cls(**options)(arguments["embeddings"], arguments["labels"])


def test_bad_views():
    odd = r"embeddings must have an even number of rows when labels is None \(row i and row i \+ B/2 "
    with pytest.raises(ValueError, match=odd + r"are two views of one image\), got 5$"):
        info_nce.nt_xent_loss(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"embeddings must be 2-D"):
        info_nce.NTXentLoss()(torch.randn(6))
    for n in (0, 1.5, "2"):
        with pytest.raises(ValueError, match=rf"n must be an integer >= 1, got {n!r}$"):
            info_nce.views_labels(n)


def test_without_value_checks_a_batch_without_positives_costs_zero_with_a_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    with value_checks(False):
        for fn in (info_nce.nt_xent_loss, info_nce.supcon_loss):
            loss = fn(x, torch.arange(4))
            x.grad = None
            loss.backward()
            assert loss.item() == 0 and torch.equal(x.grad, torch.zeros_like(x)), fn.__name__

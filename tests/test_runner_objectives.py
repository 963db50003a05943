"""Every loss, optimizer and schedule of the tables, against torch built by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from netc.diagnostics import SpecError
from netc.runner.objectives import (
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    LossContext,
    build_loss,
    build_optimizer,
    build_schedule,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)

# ---------------------------------------------------------------- losses

W5 = [1.0, 2.0, 0.5, 0.0, 3.0]
LOSS_CASES = {
    "cross_entropy": ("cross_entropy", lambda o, y: F.cross_entropy(o, y), "classes"),
    "cross_entropy(label_smoothing=0.1)": ("cross_entropy", lambda o, y: F.cross_entropy(o, y, label_smoothing=0.1),
                                           "classes"),
    "cross_entropy(weight=[1, 2, 0.5, 0, 3], label_smoothing=0.2)":
        ("cross_entropy", lambda o, y: F.cross_entropy(o, y, weight=torch.tensor(W5), label_smoothing=0.2), "classes"),
    "nll": ("nll", lambda o, y: F.nll_loss(o, y), "log-probs"),
    "nll(weight=[1, 2, 0.5, 0, 3])": ("nll", lambda o, y: F.nll_loss(o, y, weight=torch.tensor(W5)), "log-probs"),
    "focal": ("focal", lambda o, y: (F.cross_entropy(o, y, reduction="none")
                                     * (1 - torch.exp(-F.cross_entropy(o, y, reduction="none"))) ** 2).mean(),
              "classes"),
    "focal(gamma=0)": ("focal", lambda o, y: F.cross_entropy(o, y), "classes"),
    "bce": ("bce", F.binary_cross_entropy_with_logits, "binary"),
    "mse": ("mse", F.mse_loss, "real"),
    "mae": ("mae", F.l1_loss, "real"),
    "huber": ("huber", lambda o, y: F.huber_loss(o, y, delta=1.0), "real"),
    "huber(delta=0.3)": ("huber", lambda o, y: F.huber_loss(o, y, delta=0.3), "real"),
}
CTX5 = LossContext(num_classes=5, counts=(10, 20, 5, 1, 4))


def test_every_loss_has_a_case():
    assert {name for name, _, _ in LOSS_CASES.values()} == set(LOSSES)


def _case(kind: str, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if kind in ("classes", "log-probs"):
        out, y = torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
        return (out.log_softmax(-1) if kind == "log-probs" else out), y
    if kind == "binary":
        return torch.randn(16, 1, generator=g), torch.randint(0, 2, (16, 1), generator=g).float()
    return torch.randn(16, 3, generator=g) * 2, torch.randn(16, 3, generator=g)


@pytest.mark.parametrize("call", list(LOSS_CASES))
def test_loss_matches_torch(call):
    _, reference, kind = LOSS_CASES[call]
    out, y = _case(kind, torch.Generator().manual_seed(0))
    got = build_loss(resolve_loss(call), CTX5)(out, y)
    assert torch.allclose(got, reference(out, y), atol=1e-6)


def test_cross_entropy_over_sequences_moves_the_class_axis():
    out, y = torch.randn(4, 7, 5), torch.randint(0, 5, (4, 7))
    got = build_loss(resolve_loss("cross_entropy"), LossContext(sequence=True, num_classes=5))(out, y)
    assert torch.allclose(got, F.cross_entropy(out.reshape(-1, 5), y.reshape(-1)), atol=1e-6)
    soft = torch.softmax(torch.randn(4, 7, 5), -1)  # probability targets per step
    got = build_loss(resolve_loss("cross_entropy(label_smoothing=0.1)"),
                     LossContext(sequence=True, num_classes=5))(out, soft)
    want = F.cross_entropy(out.reshape(-1, 5), soft.reshape(-1, 5), label_smoothing=0.1)
    assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("call", ["cross_entropy(weight=[1, 2, 0.5, 0, 3])", "cross_entropy(label_smoothing=0.1)",
                                  "nll", "nll(weight=[1, 2, 0.5, 0, 3])", "focal(gamma=0, weight=[1, 2, 0.5, 0, 3])"])
def test_probability_targets_match_torch(call):
    """Soft targets: cross_entropy as torch's probability form; nll as -sum(w y log p) per sample, averaged."""
    g = torch.Generator().manual_seed(1)
    out, soft = torch.randn(16, 5, generator=g), torch.softmax(torch.randn(16, 5, generator=g) * 3, -1)
    bound = resolve_loss(call)
    w = torch.tensor(bound.kwargs["weight"]) if bound.kwargs["weight"] else torch.ones(5)
    if bound.name == "nll":
        logp = out.log_softmax(-1)
        got, want = build_loss(bound, CTX5)(logp, soft), -(soft * logp * w).sum(1).mean()
    else:
        got = build_loss(bound, CTX5)(out, soft)
        want = F.cross_entropy(out, soft, weight=w, label_smoothing=bound.kwargs.get("label_smoothing", 0.0))
    assert torch.allclose(got, want, atol=1e-6)


def test_one_hot_targets_equal_class_ids():
    """A one-hot row is the class id: the same loss (the data layer turns one-hot rows into ids too)."""
    out, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    loss = build_loss(resolve_loss("cross_entropy(label_smoothing=0.05)"), CTX5)
    assert torch.allclose(loss(out, F.one_hot(y, 5).float()), loss(out, y), atol=1e-6)


def test_balanced_class_weights_follow_scikit_learn():
    """balanced: n / (classes * count) per class, scikit-learn's compute_class_weight('balanced')."""
    out, y = torch.randn(40, 5), torch.randint(0, 5, (40,))
    counts = torch.tensor(CTX5.counts, dtype=torch.float32)
    w = counts.sum() / (5 * counts)
    got = build_loss(resolve_loss("cross_entropy(balanced=true)"), CTX5)(out, y)
    assert torch.allclose(got, F.cross_entropy(out, y, weight=w), atol=1e-6)


@pytest.mark.parametrize("call, message", [
    ("cross_entropy(weight=[1, 2])", "needs 5 non-negative numbers"),
    ("cross_entropy(weight=[1, 2, 3, 4, -1])", "needs 5 non-negative numbers"),
    ("nll(weight=[1, 1, 1, 1, 1], balanced=true)", "weight or balanced, not both"),
])
def test_bad_class_weights_are_refused(call, message):
    with pytest.raises(SpecError, match=message):
        build_loss(resolve_loss(call), CTX5)


def test_loss_tasks():
    assert {n: e.task for n, e in LOSSES.items()} == {
        "cross_entropy": "classification", "nll": "classification", "focal": "classification", "bce": "binary", "mse": "regression",
        "mae": "regression", "huber": "regression"}


# ---------------------------------------------------------------- optimizers

OPT_CASES = {
    "sgd(lr=0.1)": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd(lr=0.05, momentum=0.9, nesterov=true, weight_decay=1e-4)":
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
    "adam(lr=1e-3, weight_decay=1e-4)": lambda p: torch.optim.Adam(p, lr=1e-3, weight_decay=1e-4),
    "adam(betas=[0.8, 0.99], amsgrad=true)": lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.8, 0.99), amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p),
    "adamw(lr=2e-3, weight_decay=0.1)": lambda p: torch.optim.AdamW(p, lr=2e-3, weight_decay=0.1),
    "rmsprop(lr=1e-3, momentum=0.5, centered=true)":
        lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
}


def test_every_optimizer_has_a_case():
    assert {c.split("(")[0] for c in OPT_CASES} == set(OPTIMIZERS)


def _train(make_opt, steps=5):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = make_opt(model.parameters())
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("call", list(OPT_CASES))
def test_optimizer_matches_torch(call):
    ours = _train(lambda p: build_optimizer(resolve_optimizer(call), p))
    ref = _train(OPT_CASES[call])
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


@pytest.mark.parametrize("call, message", [
    ("adam(betas=[0.9])", "betas must be two numbers"),
    ("sgd(lr=0.1, nesterov=true)", "nesterov needs momentum > 0"),
])
def test_optimizer_argument_checks(call, message):
    with pytest.raises(SpecError, match=message):
        build_optimizer(resolve_optimizer(call), [torch.nn.Parameter(torch.zeros(1))])


# ---------------------------------------------------------------- schedules

def _lrs(call: str, epochs: int = 4, steps: int = 5, lr: float = 0.1, metric=None) -> list[list[float]]:
    """Learning rate at every step of every epoch, stepping the scheduler as the loop does."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    bound = resolve_schedule(call)
    sched = build_schedule(bound, opt, epochs=epochs, steps_per_epoch=steps)
    out = []
    for e in range(epochs):
        row = []
        for _ in range(steps):
            row.append(opt.param_groups[0]["lr"])
            opt.step()
            if bound.entry.interval == "step":
                sched.step()
        out.append(row)
        if bound.entry.interval == "epoch":
            sched.step(metric[e]) if bound.entry.needs_metric else sched.step()
    return out


def test_every_schedule_is_tested():
    assert set(SCHEDULES) == {"step", "exponential", "cosine", "onecycle", "plateau"}


def test_step_schedule():
    lrs = _lrs("step(step_size=2, gamma=0.5)")
    assert [r[0] for r in lrs] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert all(len(set(r)) == 1 for r in lrs)  # constant within an epoch


def test_exponential_schedule():
    assert [r[0] for r in _lrs("exponential(gamma=0.5)")] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_cosine_with_warmup_in_epochs_updates_every_step():
    lrs = [lr for r in _lrs("cosine(warmup=1, min_lr=0.001)", epochs=4, steps=5) for lr in r]
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])  # linear warm-up over one epoch
    decay = lrs[5:]
    assert all(a > b for a, b in zip(decay, decay[1:]))  # strictly decreasing afterwards
    total, warm = 20, 5
    expected = [0.001 + (0.1 - 0.001) * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
                for s in range(warm, total)]
    assert decay == pytest.approx(expected)


def test_cosine_without_warmup_starts_at_lr():
    lrs = [lr for r in _lrs("cosine", epochs=2, steps=3) for lr in r]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] < 0.1


def test_onecycle_matches_torch():
    lrs = [lr for r in _lrs("onecycle(max_lr=1.0, pct_start=0.25)", epochs=2, steps=10) for lr in r]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20, pct_start=0.25)
    ref = []
    for _ in range(20):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        ref_sched.step()
    assert lrs == pytest.approx(ref)
    assert max(lrs) == pytest.approx(1.0, rel=1e-3)


def test_onecycle_default_max_lr_is_ten_times_lr():
    lrs = [lr for r in _lrs("onecycle", epochs=2, steps=10, lr=0.01) for lr in r]
    assert max(lrs) == pytest.approx(0.1, rel=1e-2)


def test_plateau_reduces_after_patience():
    metric = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9]
    lrs = [r[0] for r in _lrs("plateau(patience=1, factor=0.5)", epochs=6, steps=1, metric=metric)]
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05])


@pytest.mark.parametrize("call", ["plateau(patience=1, factor=0.5, mode=max)",
                                  "plateau(patience=1, factor=0.5, monitor=val.accuracy)"])
def test_plateau_watching_a_metric_that_should_rise(call):
    """mode=max (given, or from the monitored metric's direction): a rise is progress, a flat run a plateau."""
    metric = [0.5, 0.6, 0.7, 0.7, 0.7, 0.7]
    lrs = [r[0] for r in _lrs(call, epochs=6, steps=1, metric=metric)]
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.05])


def test_schedule_intervals():
    assert {n: e.interval for n, e in SCHEDULES.items()} == {
        "step": "epoch", "exponential": "epoch", "cosine": "step", "onecycle": "step", "plateau": "epoch"}

"""Losses, optimizers and learning-rate schedules: one table each, keyed by name.

Each entry declares the keyword arguments it accepts (``registry.Param``); the
``train:`` block names them as call strings (``adam(lr=1e-3)``) and
``registry.resolve`` binds them. Torch is imported inside the builders only, so
the tables (and the JSON Schema derived from them) load without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from netc.diagnostics import SpecError
from netc.runner.registry import REQUIRED, Bound, Entry, Param, resolve

# ---------------------------------------------------------------- losses

@dataclass(frozen=True)
class LossEntry(Entry):
    """A loss: ``task`` says what the targets are (class ids, 0/1 labels, real values)."""

    task: str = "classification"  # classification | binary | regression


def _cross_entropy(label_smoothing: float, sequence: bool = False):
    import torch.nn.functional as F

    if not sequence:
        return lambda out, y: F.cross_entropy(out, y, label_smoothing=label_smoothing)

    def loss(out, y):  # (N, T, C) logits against (N, T) class ids: classes go to dim 1 for torch
        return F.cross_entropy(out.movedim(-1, 1), y, label_smoothing=label_smoothing)

    return loss


def _bce(sequence: bool = False):
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits


def _mse(sequence: bool = False):
    import torch.nn.functional as F

    return F.mse_loss


def _mae(sequence: bool = False):
    import torch.nn.functional as F

    return F.l1_loss


def _huber(delta: float, sequence: bool = False):
    import torch.nn.functional as F

    return lambda out, y: F.huber_loss(out, y, delta=delta)


LOSSES: dict[str, LossEntry] = {e.name: e for e in [
    LossEntry("cross_entropy", "softmax cross-entropy on class logits (targets: class ids)",
              {"label_smoothing": Param(0.0, float, "mix this much of the uniform distribution into targets")},
              _cross_entropy, task="classification"),
    LossEntry("bce", "binary cross-entropy on logits (targets: 0/1, one output per label)", {}, _bce,
              task="binary"),
    LossEntry("mse", "mean squared error", {}, _mse, task="regression"),
    LossEntry("mae", "mean absolute error (L1)", {}, _mae, task="regression"),
    LossEntry("huber", "Huber loss: squared below delta, linear above",
              {"delta": Param(1.0, float, "where the loss turns from quadratic to linear")}, _huber,
              task="regression"),
]}


def build_loss(bound: Bound, sequence: bool = False):
    """A ``loss(outputs, targets) -> scalar`` callable for a resolved loss call."""
    return bound.entry.build(**bound.kwargs, sequence=sequence)


# ---------------------------------------------------------------- optimizers

def _betas(kw: dict) -> dict:
    betas = kw.pop("betas")
    if len(betas) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in betas):
        raise SpecError(f"train.optimizer: betas must be two numbers in [0, 1), got {betas!r}",
                        hint="e.g. adam(betas=[0.9, 0.999])", kind="arg")
    return {**kw, "betas": (float(betas[0]), float(betas[1]))}


def _sgd(params, **kw):
    import torch

    if kw["nesterov"] and (kw["momentum"] <= 0 or kw["dampening"] != 0):
        raise SpecError("train.optimizer: nesterov needs momentum > 0 and dampening 0",
                        hint="e.g. sgd(lr=0.1, momentum=0.9, nesterov=true)", kind="arg")
    return torch.optim.SGD(params, **kw)


def _adam(params, **kw):
    import torch

    return torch.optim.Adam(params, **_betas(kw))


def _adamw(params, **kw):
    import torch

    return torch.optim.AdamW(params, **_betas(kw))


def _rmsprop(params, **kw):
    import torch

    return torch.optim.RMSprop(params, **kw)


_LR = "learning rate"
_WD = "L2 penalty (decoupled for adamw)"
OPTIMIZERS: dict[str, Entry] = {e.name: e for e in [
    Entry("sgd", "stochastic gradient descent, optionally with (Nesterov) momentum", {
        "lr": Param(0.01, float, _LR), "momentum": Param(0.0, float, "momentum factor"),
        "nesterov": Param(False, bool, "use Nesterov momentum"),
        "weight_decay": Param(0.0, float, _WD), "dampening": Param(0.0, float, "dampening for momentum"),
    }, _sgd),
    Entry("adam", "Adam", {
        "lr": Param(1e-3, float, _LR), "betas": Param([0.9, 0.999], list, "moment decay rates"),
        "eps": Param(1e-8, float, "denominator term"), "weight_decay": Param(0.0, float, _WD),
        "amsgrad": Param(False, bool, "use the AMSGrad variant"),
    }, _adam),
    Entry("adamw", "Adam with decoupled weight decay", {
        "lr": Param(1e-3, float, _LR), "betas": Param([0.9, 0.999], list, "moment decay rates"),
        "eps": Param(1e-8, float, "denominator term"), "weight_decay": Param(0.01, float, _WD),
        "amsgrad": Param(False, bool, "use the AMSGrad variant"),
    }, _adamw),
    Entry("rmsprop", "RMSprop", {
        "lr": Param(0.01, float, _LR), "alpha": Param(0.99, float, "smoothing constant"),
        "eps": Param(1e-8, float, "denominator term"), "weight_decay": Param(0.0, float, _WD),
        "momentum": Param(0.0, float, "momentum factor"), "centered": Param(False, bool, "centered RMSprop"),
    }, _rmsprop),
]}


def build_optimizer(bound: Bound, params):
    """A torch optimizer over ``params`` for a resolved optimizer call."""
    return bound.entry.build(params, **bound.kwargs)


# ---------------------------------------------------------------- schedules

@dataclass(frozen=True)
class ScheduleEntry(Entry):
    """A learning-rate schedule: ``interval`` says whether it steps per batch or per epoch."""

    interval: str = "epoch"  # "step": after every optimizer step; "epoch": after validation
    needs_metric: bool = False  # step(val_loss) instead of step()


def _step(opt, *, epochs, steps_per_epoch, step_size, gamma):
    import torch

    return torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)


def _exponential(opt, *, epochs, steps_per_epoch, gamma):
    import torch

    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)


def _cosine(opt, *, epochs, steps_per_epoch, warmup, min_lr):
    import torch

    total = max(1, epochs * steps_per_epoch)
    warm = min(round(warmup * steps_per_epoch), total - 1)

    def factor_for(base_lr: float):
        floor = min_lr / base_lr if base_lr > 0 else 0.0

        def factor(step: int) -> float:
            if step < warm:  # linear warm-up from lr/warm to lr
                return (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        return factor

    lambdas = [factor_for(g["lr"]) for g in opt.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(opt, lambdas)


def _onecycle(opt, *, epochs, steps_per_epoch, max_lr, pct_start, div_factor, final_div_factor):
    import torch

    max_lr = max_lr if max_lr is not None else [10 * g["lr"] for g in opt.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=max(1, epochs * steps_per_epoch), pct_start=pct_start,
        div_factor=div_factor, final_div_factor=final_div_factor)


def _plateau(opt, *, epochs, steps_per_epoch, patience, factor, min_lr):
    import torch

    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=patience, factor=factor,
                                                      min_lr=min_lr)


SCHEDULES: dict[str, ScheduleEntry] = {e.name: e for e in [
    ScheduleEntry("step", "multiply the learning rate by gamma every step_size epochs", {
        "step_size": Param(10, int, "epochs between decays"), "gamma": Param(0.1, float, "decay factor"),
    }, _step),
    ScheduleEntry("exponential", "multiply the learning rate by gamma after every epoch", {
        "gamma": Param(0.95, float, "decay factor per epoch"),
    }, _exponential),
    ScheduleEntry("cosine", "linear warm-up, then cosine decay to min_lr, updated every step", {
        "warmup": Param(0.0, float, "warm-up length in epochs"),
        "min_lr": Param(0.0, float, "learning rate at the end"),
    }, _cosine, interval="step"),
    ScheduleEntry("onecycle", "one-cycle policy (rise to max_lr, then anneal), updated every step", {
        "max_lr": Param(None, float, "peak learning rate (default: 10x the optimizer's lr)", optional=True),
        "pct_start": Param(0.3, float, "fraction of steps spent rising"),
        "div_factor": Param(25.0, float, "initial lr = max_lr / div_factor"),
        "final_div_factor": Param(1e4, float, "final lr = initial lr / final_div_factor"),
    }, _onecycle, interval="step"),
    ScheduleEntry("plateau", "divide the learning rate when validation loss stops improving", {
        "patience": Param(2, int, "epochs without improvement before reducing"),
        "factor": Param(0.1, float, "multiplier applied on a plateau"),
        "min_lr": Param(0.0, float, "lower bound"),
    }, _plateau, needs_metric=True),
]}


def build_schedule(bound: Bound, optimizer, *, epochs: int, steps_per_epoch: int):
    """A torch LR scheduler for a resolved schedule call."""
    return bound.entry.build(optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, **bound.kwargs)


def resolve_loss(text: str, where: str = "train.loss", span=None) -> Bound:
    return resolve(text, LOSSES, "loss", where=where, span=span)


def resolve_optimizer(text: str, where: str = "train.optimizer", span=None) -> Bound:
    return resolve(text, OPTIMIZERS, "optimizer", where=where, span=span)


def resolve_schedule(text: str, where: str = "train.schedule", span=None) -> Bound:
    return resolve(text, SCHEDULES, "schedule", where=where, span=span)


__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "REQUIRED",
    "SCHEDULES",
    "LossEntry",
    "ScheduleEntry",
    "build_loss",
    "build_optimizer",
    "build_schedule",
    "resolve_loss",
    "resolve_optimizer",
    "resolve_schedule",
]

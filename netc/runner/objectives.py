"""The torch builders of losses, optimizers and learning-rate schedules, one per declared name.

The names and their arguments are declared once, torch-free, in
``netc.compiler.train.objectives`` (what ``netc check`` validates against); this
module attaches a builder to each entry. Torch is imported inside the builders.
"""

from __future__ import annotations

import math

from netc.compiler.train import objectives as declared
from netc.compiler.train.objectives import (
    LossEntry,
    ScheduleEntry,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)
from netc.compiler.train.registry import Bound, Entry, implement
from netc.diagnostics import SpecError

# ---------------------------------------------------------------- losses

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


LOSSES: dict[str, LossEntry] = implement(declared.LOSSES, "build", {
    "cross_entropy": _cross_entropy, "bce": _bce, "mse": _mse, "mae": _mae, "huber": _huber,
})


def build_loss(bound: Bound, sequence: bool = False):
    """A ``loss(outputs, targets) -> scalar`` callable for a resolved loss call."""
    return LOSSES[bound.name].build(**bound.kwargs, sequence=sequence)


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


OPTIMIZERS: dict[str, Entry] = implement(declared.OPTIMIZERS, "build", {
    "sgd": _sgd, "adam": _adam, "adamw": _adamw, "rmsprop": _rmsprop,
})


def build_optimizer(bound: Bound, params):
    """A torch optimizer over ``params`` for a resolved optimizer call."""
    return OPTIMIZERS[bound.name].build(params, **bound.kwargs)


# ---------------------------------------------------------------- schedules

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


SCHEDULES: dict[str, ScheduleEntry] = implement(declared.SCHEDULES, "build", {
    "step": _step, "exponential": _exponential, "cosine": _cosine, "onecycle": _onecycle, "plateau": _plateau,
})


def build_schedule(bound: Bound, optimizer, *, epochs: int, steps_per_epoch: int):
    """A torch LR scheduler for a resolved schedule call."""
    return SCHEDULES[bound.name].build(optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, **bound.kwargs)


__all__ = [
    "LOSSES",
    "OPTIMIZERS",
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

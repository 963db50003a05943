"""The torch builders of losses, optimizers and learning-rate schedules, one per declared name.

The names and their arguments are declared once, torch-free, in
``netc.compiler.train.objectives`` (what ``netc check`` validates against); this
module attaches a builder to each entry. Torch is imported inside the builders.
"""

from __future__ import annotations

import math

from netc.compiler.train import objectives as declared
from netc.compiler.train.objectives import (
    LossContext,
    LossEntry,
    ScheduleEntry,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)
from netc.compiler.train.registry import Bound, Entry, implement
from netc.diagnostics import SpecError

# ---------------------------------------------------------------- losses

def _class_weight(ctx: LossContext, weight: list | None, balanced: bool, name: str):
    """The per-class weight tensor (or None): given, balanced from the training counts, or off."""
    import torch

    if weight is not None and balanced:
        raise SpecError(f"train.loss: {name} takes weight or balanced, not both",
                        hint=f"e.g. {name}(balanced=true)", kind="arg")
    if balanced:
        counts = torch.tensor(ctx.counts, dtype=torch.float32)
        return counts.sum() / (len(counts) * counts.clamp(min=1))  # a class absent from training: n / classes
    if weight is None:
        return None
    if len(weight) != ctx.num_classes or not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0
                                                 for w in weight):
        raise SpecError(f"train.loss: {name}(weight=...) needs {ctx.num_classes} non-negative numbers, one per "
                        f"class the model outputs, got {weight!r}",
                        hint=f"e.g. {name}(weight=[{', '.join(['1'] * min(ctx.num_classes, 3))}"
                             f"{', ...' if ctx.num_classes > 3 else ''}]), or balanced=true", kind="arg")
    return torch.tensor([float(w) for w in weight])


def _classes_first(fn, ctx: LossContext):
    """``fn`` on (N, C, ...) layouts: sequence outputs (N, T, C) and probability targets move classes to dim 1."""
    if not ctx.sequence:
        return fn

    def loss(out, y):
        return fn(out.movedim(-1, 1), y.movedim(-1, 1) if y.is_floating_point() else y)

    return loss


def _cross_entropy(ctx: LossContext, label_smoothing: float, weight: list | None, balanced: bool):
    import torch.nn.functional as F

    w = _class_weight(ctx, weight, balanced, "cross_entropy")

    def loss(out, y):  # class ids (N,) or probability rows (N, C): torch takes either
        return F.cross_entropy(out, y, weight=None if w is None else w.to(out.device),
                               label_smoothing=label_smoothing)

    return _classes_first(loss, ctx)


def _nll(ctx: LossContext, weight: list | None, balanced: bool):
    import torch.nn.functional as F

    w = _class_weight(ctx, weight, balanced, "nll")

    def loss(logp, y):
        wd = None if w is None else w.to(logp.device)
        if not y.is_floating_point():
            return F.nll_loss(logp, y, weight=wd)
        # probability targets: -sum_c w_c y_c log p_c, averaged over samples (cross_entropy's convention)
        terms = -(y * logp) if wd is None else -(y * logp) * wd.reshape(-1, *[1] * (logp.dim() - 2))
        return terms.sum(1).mean()

    return _classes_first(loss, ctx)


def _focal(ctx: LossContext, gamma: float, weight: list | None, balanced: bool):
    import torch.nn.functional as F

    w = _class_weight(ctx, weight, balanced, "focal")

    def loss(out, y):  # -sum_c w_c y_c (1 - p_c)^gamma log p_c per sample, averaged
        logp = out.log_softmax(1)
        target = y if y.is_floating_point() else F.one_hot(y, out.shape[1]).movedim(-1, 1).to(logp.dtype)
        terms = -target * (1 - logp.exp()).pow(gamma) * logp
        if w is not None:
            terms = terms * w.to(out.device).reshape(-1, *[1] * (logp.dim() - 2))
        return terms.sum(1).mean()

    return _classes_first(loss, ctx)


def _bce(ctx: LossContext):
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits


def _mse(ctx: LossContext):
    import torch.nn.functional as F

    return F.mse_loss


def _mae(ctx: LossContext):
    import torch.nn.functional as F

    return F.l1_loss


def _huber(ctx: LossContext, delta: float):
    import torch.nn.functional as F

    return lambda out, y: F.huber_loss(out, y, delta=delta)


LOSSES: dict[str, LossEntry] = implement(declared.LOSSES, "build", {
    "cross_entropy": _cross_entropy, "nll": _nll, "focal": _focal, "bce": _bce, "mse": _mse, "mae": _mae, "huber": _huber,
})


def build_loss(bound: Bound, ctx: LossContext | None = None):
    """A ``loss(outputs, targets) -> scalar`` callable for a resolved loss call (built-in or a plugin's)."""
    return LOSSES[bound.name].build(ctx or LossContext(), **bound.kwargs)


def loss_context(ds, out_shape: tuple[int, ...]) -> LossContext:
    """The :class:`LossContext` of a data set whose targets were fitted to outputs of ``out_shape``."""
    import torch

    if ds.task != "classification" or ds.binary:
        return LossContext()
    y = ds.train.y
    ids = y.argmax(-1) if y.is_floating_point() else y  # probability rows count as their likeliest class
    counts = torch.bincount(ids.reshape(-1), minlength=ds.num_classes)[:ds.num_classes]
    return LossContext(sequence=len(out_shape) > 1, num_classes=ds.num_classes,
                       counts=tuple(int(c) for c in counts))


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


def _plateau(opt, *, epochs, steps_per_epoch, patience, factor, min_lr, monitor, mode):
    import torch

    mode = plateau_mode(monitor, mode)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, patience=patience, factor=factor,
                                                      min_lr=min_lr)


def plateau_mode(monitor: str | None, mode: str) -> str:
    """'min' or 'max' for a plateau schedule: as given, or the monitored value's direction."""
    from netc.compiler.train.metrics import mode_of

    if mode != "auto":
        return mode
    return mode_of(monitor.partition(".")[2]) if monitor else "min"


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
    "LossContext",
    "LossEntry",
    "ScheduleEntry",
    "build_loss",
    "build_optimizer",
    "build_schedule",
    "loss_context",
    "resolve_loss",
    "resolve_optimizer",
    "resolve_schedule",
]

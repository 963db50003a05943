"""The names of losses, optimizers and learning-rate schedules, with their declared arguments.

The ``train:`` block names them as call strings (``adam(lr=1e-3)``) and
``registry.resolve`` binds them against these tables; ``netc check``, the
language server and the schema read them without torch. The runner attaches the
torch builders (``netc.runner.objectives``), one per name declared here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from netc.compiler.train.registry import Bound, Entry, Param, Table, resolve


@dataclass(frozen=True)
class LossEntry(Entry):
    """A loss: ``task`` says what the targets are (class ids, 0/1 labels, real values).

    ``build(ctx, **arguments)`` returns ``loss(outputs, targets) -> scalar`` (torch); ``ctx`` is the
    run's :class:`LossContext`. Installed packages add losses through the ``netc.losses`` entry-point
    group: a module with ``LOSSES: list[LossEntry]``, each with its ``build`` set.
    """

    task: str = "classification"  # classification | binary | regression


@dataclass(frozen=True)
class ScheduleEntry(Entry):
    """A learning-rate schedule: ``interval`` says whether it steps per batch or per epoch."""

    interval: str = "epoch"  # "step": after every optimizer step; "epoch": after validation
    needs_metric: bool = False  # step(a logged value) instead of step()


@dataclass(frozen=True)
class LossContext:
    """What a loss builder may need to know about the run besides its arguments."""

    sequence: bool = False  # classification per step: outputs (N, T, C), targets (N, T)
    num_classes: int = 0  # classes the model outputs (classification)
    counts: tuple[int, ...] = ()  # training samples (or steps) per class id, for balanced class weights


_SMOOTH = Param(0.0, float, "mix this much of the uniform distribution into the targets (0: off)")
CLASS_WEIGHT = Param(None, list, "one weight per class, multiplying that class's terms (default: all 1)",
                     optional=True)  # netc check counts them against the model's classes (heads.py)
_BALANCED = Param(False, bool, "weight each class by n / (classes * its count in the training split), "
                               "scikit-learn's 'balanced' (instead of weight)")

LOSSES: Table[LossEntry] = Table("netc.losses", "LOSSES", {e.name: e for e in [
    LossEntry("cross_entropy", "softmax cross-entropy on class logits; targets: class ids, one-hot rows or "
                               "probability rows (each summing to 1)",
              {"label_smoothing": _SMOOTH, "weight": CLASS_WEIGHT, "balanced": _BALANCED}, task="classification"),
    LossEntry("nll", "negative log-likelihood of log-probabilities: the model ends in LogSoftmax; targets as "
                     "for cross_entropy",
              {"weight": CLASS_WEIGHT, "balanced": _BALANCED}, task="classification"),
    LossEntry("focal", "focal loss (Lin et al. 2017) on class logits: each sample's cross-entropy scaled by "
                       "(1 - p_true)^gamma, so that easy samples count less; targets as for cross_entropy; "
                       "averaged over samples",
              {"gamma": Param(2.0, float, "focusing strength (0: plain cross-entropy)"), "weight": CLASS_WEIGHT,
               "balanced": _BALANCED}, task="classification"),
    LossEntry("bce", "binary cross-entropy on logits (targets: 0/1, one output per label)", {},
              task="binary"),
    LossEntry("mse", "mean squared error", {}, task="regression"),
    LossEntry("mae", "mean absolute error (L1)", {}, task="regression"),
    LossEntry("huber", "Huber loss: squared below delta, linear above",
              {"delta": Param(1.0, float, "where the loss turns from quadratic to linear")},
              task="regression"),
]})


@dataclass(frozen=True)
class OptimizerEntry(Entry):
    """An optimizer: ``state`` says how many parameter-sized tensors it keeps, given its bound arguments."""

    state: Callable[[Mapping[str, object]], int] = lambda kw: 0


_LR = "learning rate"
_WD = "L2 penalty (decoupled for adamw)"
OPTIMIZERS: dict[str, OptimizerEntry] = {e.name: e for e in [
    OptimizerEntry("sgd", "stochastic gradient descent, optionally with (Nesterov) momentum", {
        "lr": Param(0.01, float, _LR), "momentum": Param(0.0, float, "momentum factor"),
        "nesterov": Param(False, bool, "use Nesterov momentum"),
        "weight_decay": Param(0.0, float, _WD), "dampening": Param(0.0, float, "dampening for momentum"),
    }, state=lambda kw: int(bool(kw["momentum"]))),  # the momentum buffer
    OptimizerEntry("adam", "Adam", {
        "lr": Param(1e-3, float, _LR), "betas": Param([0.9, 0.999], list, "moment decay rates"),
        "eps": Param(1e-8, float, "denominator term"), "weight_decay": Param(0.0, float, _WD),
        "amsgrad": Param(False, bool, "use the AMSGrad variant"),
    }, state=lambda kw: 2 + bool(kw["amsgrad"])),  # two moments (+ the running maximum)
    OptimizerEntry("adamw", "Adam with decoupled weight decay", {
        "lr": Param(1e-3, float, _LR), "betas": Param([0.9, 0.999], list, "moment decay rates"),
        "eps": Param(1e-8, float, "denominator term"), "weight_decay": Param(0.01, float, _WD),
        "amsgrad": Param(False, bool, "use the AMSGrad variant"),
    }, state=lambda kw: 2 + bool(kw["amsgrad"])),
    OptimizerEntry("rmsprop", "RMSprop", {
        "lr": Param(0.01, float, _LR), "alpha": Param(0.99, float, "smoothing constant"),
        "eps": Param(1e-8, float, "denominator term"), "weight_decay": Param(0.0, float, _WD),
        "momentum": Param(0.0, float, "momentum factor"), "centered": Param(False, bool, "centered RMSprop"),
    }, state=lambda kw: 1 + bool(kw["momentum"]) + bool(kw["centered"])),  # square average (+ buffer, + mean)
]}


SCHEDULES: dict[str, ScheduleEntry] = {e.name: e for e in [
    ScheduleEntry("step", "multiply the learning rate by gamma every step_size epochs", {
        "step_size": Param(10, int, "epochs between decays"), "gamma": Param(0.1, float, "decay factor"),
    }),
    ScheduleEntry("exponential", "multiply the learning rate by gamma after every epoch", {
        "gamma": Param(0.95, float, "decay factor per epoch"),
    }),
    ScheduleEntry("cosine", "linear warm-up, then cosine decay to min_lr, updated every step", {
        "warmup": Param(0.0, float, "warm-up length in epochs"),
        "min_lr": Param(0.0, float, "learning rate at the end"),
    }, interval="step"),
    ScheduleEntry("onecycle", "one-cycle policy (rise to max_lr, then anneal), updated every step", {
        "max_lr": Param(None, float, "peak learning rate (default: 10x the optimizer's lr)", optional=True),
        "pct_start": Param(0.3, float, "fraction of steps spent rising"),
        "div_factor": Param(25.0, float, "initial lr = max_lr / div_factor"),
        "final_div_factor": Param(1e4, float, "final lr = initial lr / final_div_factor"),
    }, interval="step"),
    ScheduleEntry("plateau", "multiply the learning rate by factor when a logged value stops improving", {
        "patience": Param(2, int, "epochs without improvement before reducing"),
        "factor": Param(0.1, float, "multiplier applied on a plateau"),
        "min_lr": Param(0.0, float, "lower bound"),
        "monitor": Param(None, str, "the logged value to watch, e.g. val.accuracy (default: val.loss, or "
                                    "train.loss without a validation split)", optional=True),
        "mode": Param("auto", str, "min or max; auto: min for losses and errors, max for other metrics"),
    }, needs_metric=True),
]}


def resolve_loss(text: str, where: str = "train.loss", span=None) -> Bound:
    """Bind a loss call string such as ``cross_entropy(label_smoothing=0.1)``."""
    return resolve(text, LOSSES, "loss", where=where, span=span)


def resolve_optimizer(text: str, where: str = "train.optimizer", span=None) -> Bound:
    """Bind an optimizer call string such as ``adam(lr=1e-3)``."""
    return resolve(text, OPTIMIZERS, "optimizer", where=where, span=span)


def resolve_schedule(text: str, where: str = "train.schedule", span=None) -> Bound:
    """Bind a schedule call string such as ``cosine(warmup=1)``."""
    return resolve(text, SCHEDULES, "schedule", where=where, span=span)

"""The training engine: one loop skeleton that every objective shares.

``train(objective, cfg, run_dir)`` reads top to bottom in numbered steps: device, precision and
seeds; the objective's data and models; resume; the epoch loop (shuffled global batches, the
objective's step on each, NaN stop, progress, Ctrl-C/SIGTERM, epoch records, schedules, best/last
checkpoints, early stopping); and the objective's finish (test, samples). Everything an objective
does not need to know lives here: devices, AMP and gradient scaling, clipping, seeds and RNG
state, exact mid-epoch resume, atomic background checkpoints, DDP hooks, metrics.jsonl,
TensorBoard, run files.

An objective (``supervised.py``, ``gan.py``) supplies only what differs: its models and optimizers,
its step on one global batch, its additions to the epoch record and what it does at the end.
Adding an objective never changes this file.

The batch loop is kept as lean as a hand-written one: data are tensors on the device, a batch is
an index slice of a seeded ``randperm``, per-step values stay on the device and are read once per
epoch (and at throttled progress updates, which also catch a NaN/Inf loss early).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from netc.diagnostics import EXIT_DIVERGED, EXIT_INTERRUPTED, NetcError
from netc.runner import checkpoint as ckpt
from netc.runner import distributed, lazy_dynamo
from netc.runner.config import TrainConfig
from netc.runner.objectives import build_schedule, resolve_schedule
from netc.runner.progress import Progress
from netc.runner.rundir import RunDir

if TYPE_CHECKING:  # typing.Self is Python 3.11+; annotations are never evaluated at run time
    from typing import Self

AUTO_CHECKPOINT_SECONDS = 10.0  # checkpoint_every: 0 saves last/ (and best/) at most this often, and at the end

# The settings whose change on --resume makes the run differ from an uninterrupted one.
RESUME_SENSITIVE = ("data", "split", "normalize", "augment", "loss", "batch_size", "seed")


class TrainingDiverged(NetcError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    kind = "train"
    exit_code = EXIT_DIVERGED


class TrainingInterrupted(NetcError):
    """Ctrl-C (SIGINT) or SIGTERM during training; a resumable checkpoint was saved."""

    kind = "train"
    exit_code = EXIT_INTERRUPTED


@dataclass
class FitResult:
    """What training returns: per-epoch history, the best epoch, and metrics on the test split."""

    run_dir: Path
    history: list[dict[str, Any]]  # one record per epoch, as in metrics.jsonl
    test: dict[str, float]  # test loss and metrics (plus baselines such as naive_rmse); {} without a test split
    report: dict[str, Any]  # per-class precision/recall/f1 and confusion matrix (classification)
    monitor: str  # the value that chose the best checkpoint, e.g. val.loss ('' when nothing is monitored)
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    epochs_run: int


# ---------------------------------------------------------------- what the engine hands an objective

@dataclass
class Context:
    """The engine's services for an objective: device, precision, distribution, reporting."""

    cfg: TrainConfig
    dist: distributed.Dist
    reporter: Progress
    amp: Any  # autocast context (or a null context) for the forward pass and loss
    scaler: torch.amp.GradScaler | None  # fp16 gradient scaling, None otherwise

    @property
    def device(self) -> torch.device:
        """The device this process trains on."""
        return self.dist.device

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, through the gradient scaler under fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def update(self, optimizer: torch.optim.Optimizer, params: Callable[[], Any]) -> None:
        """One optimizer step: unscale (fp16), clip to ``train.clip_grad_norm`` if set, step."""
        clip = self.cfg.clip_grad_norm
        if self.scaler is not None:
            if clip is not None:
                self.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params(), clip)
            self.scaler.step(optimizer)
            self.scaler.update()
            return
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params(), clip)
        optimizer.step()


@dataclass
class Epoch:
    """One epoch as the objective sees it: the batch order and where it (re)started."""

    number: int
    perm: torch.Tensor  # sample order on the device
    chunks: tuple[torch.Tensor, ...]  # the global batches (index slices of perm)
    first: int  # the batch this process started from (> 0 when resuming mid-epoch)
    resumed: dict[str, Any] | None  # the saved cursor when resuming mid-epoch, else None


class Objective:
    """What differs between training objectives; the engine calls these in its numbered steps.

    Set in ``prepare``: ``module`` (every model, the unit that is checkpointed), ``optimizers``
    (name → optimizer; the first one's learning rate is logged), ``generators`` (name → torch
    Generator whose state must survive a resume), ``monitor`` (the record value that picks the
    best checkpoint, e.g. ``val.loss``; None for no best/, no early stopping) and ``mode``.
    """

    name: ClassVar[str]
    log_names: ClassVar[tuple[str, ...]]  # the values ``step`` returns per batch, as train.<name> in the record
    shown: ClassVar[int] = 0  # which of them the progress bar shows
    mixed_precision: ClassVar[bool] = True  # False: train.precision is ignored (fp32 throughout)
    diverged_what: ClassVar[str] = "loss"
    diverged_hint: ClassVar[str] = ("lower the learning rate, set train.clip_grad_norm (e.g. 1.0), or check the "
                                    "data for extreme values")

    module: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    monitor: str | None = None
    mode: str = "min"
    n_train: int = 0

    def prepare(self, ctx: Context) -> None:
        """Load data, check it against the models, move them to the device, build optimizers."""
        raise NotImplementedError

    def wrap(self, ctx: Context) -> None:
        """Wrap the models for training (DDP, torch.compile) after their weights are final."""

    def start_epoch(self, ctx: Context, ep: Epoch) -> None:
        """Per-epoch set-up (e.g. clear collected outputs; take those saved in a mid-epoch cursor)."""

    def step(self, ctx: Context, micro: Sequence[tuple[torch.Tensor, float]]) -> torch.Tensor:
        """Train on one global batch: this process's micro-batches as (sample indices, loss weight).

        Returns the batch's values named by ``log_names`` (a 1-D tensor on the device, each already
        multiplied by the share ``weight`` under DDP, so that averaging over ranks gives the batch's).
        """
        raise NotImplementedError

    def end_epoch(self, ctx: Context, ep: Epoch, record: dict[str, Any]) -> None:
        """Add to the epoch's record (train metrics, validation) after ``record['train']`` holds the means."""

    def cursor(self) -> dict[str, Any]:
        """What a mid-epoch checkpoint must keep beyond the batch order and per-step values."""
        return {}

    def config(self) -> dict[str, Any]:
        """Entries of the run's config.json besides ``train`` (inputs, preprocessing, objective name)."""
        return {}

    def finish(self, ctx: Context, rd: RunDir, history: list[dict[str, Any]]
               ) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
        """After training: (test metrics, report, extra results.json entries); runs on every rank."""
        return {}, {}, {}


@dataclass
class RunState:
    """The loop's own state, checkpointed with the model so a resumed run continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    cursor: dict[str, Any] | None = None  # set when interrupted mid-epoch: perm, next batch, partial results


# ---------------------------------------------------------------- small helpers

def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NetcError("device 'cuda' requested but no CUDA GPU is available", kind="cli",
                        hint="use --device cpu or --device auto")
    return torch.device(name)


def clean(v: Any) -> Any:
    """JSON-safe floats (NaN/Inf -> None)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    return v


def history_text(history: list[dict[str, Any]]) -> str:
    """metrics.jsonl content: one JSON record per epoch."""
    return "".join(json.dumps(clean(r)) + "\n" for r in history)


def plain(v: Any) -> Any:
    """Tuples as lists, for JSON."""
    return list(v) if isinstance(v, tuple) else v


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    ckpt.atomic_write(path, json.dumps(clean(obj) if isinstance(obj, dict) else obj, indent=2, default=plain))


def monitor_value(record: dict[str, Any], monitor: str) -> float:
    """The value ``split.name`` of an epoch record (NaN when absent)."""
    split, name = monitor.split(".", 1)
    v = (record.get(split) or {}).get(name)
    return float("nan") if v is None else float(v)


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def first_bad(logs: list[torch.Tensor], start: int) -> int | None:
    """Index of the first step at or after ``start`` with a non-finite value (one device read)."""
    if start >= len(logs):
        return None
    ok = torch.isfinite(torch.stack(logs[start:]))
    if bool(ok.all()):
        return None
    return start + int((~ok.reshape(ok.shape[0], -1).all(dim=1)).nonzero()[0, 0])


class _StopFlag:
    """SIGINT and SIGTERM set ``requested``; the loop stops at the next batch boundary. A second one aborts.

    Cluster schedulers preempt with SIGTERM, so it is handled as Ctrl-C is: checkpoint, then exit 130.
    Off (``enabled=False``) under DDP: ranks would stop at different batches; the signal ends the job and
    the last checkpoint is the place to resume from.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, progress: Progress, enabled: bool = True):
        self.requested = False
        self._progress = progress
        self._previous: dict[int, Any] = {}
        self._enabled = enabled

    def __enter__(self) -> Self:
        if self._enabled and threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        what = "interrupt" if signum == signal.SIGINT else "terminate signal"
        self._progress.note(f"{what}: saving a resumable checkpoint after this step (Ctrl-C again to abort)")


class _Diverged(Exception):
    def __init__(self, batch: int):
        self.batch = batch


class _Interrupted(Exception):
    def __init__(self, batch: int):
        self.batch = batch


class _Saver:
    """The run's checkpoints: ``last/`` when due and ``best/`` with it, written in the background by rank 0."""

    def __init__(self, rd: RunDir, module: torch.nn.Module, cfg: TrainConfig, main: bool, saved_epoch: int):
        self.rd, self.module, self.cfg, self.main = rd, module, cfg, main
        self.files = ckpt.Writer(enabled=main)  # off the loop's clock
        self.best: tuple[dict, dict] | None = None  # best weights not yet on disk (saved together with last/)
        self.saved_at, self.saved_epoch = time.perf_counter(), saved_epoch

    def keep_best(self, state: dict[str, Any]) -> None:
        """Snapshot the weights as the best so far; they reach the disk with the next last/."""
        if self.main:
            self.best = (ckpt.snapshot_weights(self.module), state)

    def due(self, epoch: int) -> bool:
        """Whether last/ is due after ``epoch`` (every N epochs, or every few seconds with checkpoint_every: 0)."""
        every = self.cfg.checkpoint_every
        return epoch % every == 0 if every else time.perf_counter() - self.saved_at >= AUTO_CHECKPOINT_SECONDS

    def save(self, epoch: int, state: dict[str, Any]) -> None:
        """Write best/ (if pending) and last/."""
        self.flush_best()
        self.files.checkpoint(self.rd.last, self.module, state)
        self.saved_at, self.saved_epoch = time.perf_counter(), epoch

    def flush_best(self) -> None:
        """Write a pending best/ now."""
        if self.best is not None:
            self.files.checkpoint(self.rd.best, *self.best)
            self.best = None

    def kept(self) -> str:
        """Where the last good checkpoint is, for messages."""
        return (f"the last good checkpoint (epoch {self.saved_epoch}) is in {self.rd.last}" if self.saved_epoch
                else "no checkpoint was saved before that")


def _precision(cfg: TrainConfig, objective: Objective, device: torch.device, reporter: Progress):
    """The autocast context and gradient scaler for ``train.precision`` (fp32 off CUDA, with a note)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision) if objective.mixed_precision else None
    if dtype is not None and device.type != "cuda":
        reporter.note(f"note: precision {cfg.precision} needs CUDA; training in fp32 on {device.type}")
        dtype = None
    amp = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    return amp, torch.amp.GradScaler("cuda") if dtype == torch.float16 else None


def _batches(objective: Objective, ctx: Context, ep: Epoch, plan: list, logs: list[torch.Tensor],
             stop: _StopFlag, per_step: list, st: RunState) -> list[torch.Tensor]:
    """The batch loop of one epoch: the objective's step on each global batch from ``ep.first``.

    ``logs`` grows by one tensor of step values per batch (kept on the device); a NaN/Inf raises
    _Diverged, a stop request _Interrupted. Returns the values of every global batch, alike on all ranks.
    """
    reporter, dist, checked = ctx.reporter, ctx.dist, 0
    for b in range(ep.first, len(ep.chunks)):
        if stop.requested:
            raise _Interrupted(b)
        logs.append(objective.step(ctx, plan[b]))
        for s in per_step:
            s.step()
        st.step += 1
        if reporter.due():  # throttled: the only mid-epoch device reads
            bad = None if dist.enabled else first_bad(logs, checked)  # DDP: checked at the end
            if bad is not None:
                raise _Diverged(bad)
            checked = len(logs)
            reporter.update(b + 1, lambda: float(torch.stack(logs[-20:])[:, objective.shown].float().mean()))
    if dist.enabled:  # the global batches' values (rank-weighted shares averaged), alike on all ranks
        logs[:], checked = list(dist.mean(torch.stack(logs)).unbind()), 0
    bad = first_bad(logs, checked)
    if bad is not None:
        raise _Diverged(bad)
    return logs


# ---------------------------------------------------------------- train

def train(objective: Objective, cfg: TrainConfig, run_dir: str | Path, resume: str | Path | None = None, *,
          progress: Progress | bool = True, on_start: Callable[[], None] | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Train ``objective`` as ``cfg`` says, writing checkpoints, metrics and plots to ``run_dir``.

    ``resume`` is a run directory whose ``last/`` checkpoint to continue from. ``on_start`` runs (on
    rank 0) once the data, models and any resumed state are known to fit together, before the run's
    files are written: nothing of a run is rewritten by an attempt that fails before that. ``on_epoch``
    gets each epoch's record once it is logged and checkpointed (on every rank); an exception it raises
    (a tuner pruning the trial) ends the run there and propagates. Raises
    TrainingDiverged on a NaN/Inf value and TrainingInterrupted (after saving) on Ctrl-C or SIGTERM.
    """
    rd = RunDir(Path(run_dir))
    rd.root.mkdir(parents=True, exist_ok=True)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))
    if not cfg.compile:
        lazy_dynamo.install()  # eager optimizers need two no-op calls of torch._dynamo, not its 1.1 s import

    # 1. Device (cuda:LOCAL_RANK under DDP), precision and seeds; only rank 0 reports and writes files.
    dist = distributed.init(resolve_device(cfg.device))
    device = dist.device
    if not dist.main:
        reporter = Progress(enabled=False)
    amp, scaler = _precision(cfg, objective, device, reporter)
    ctx = Context(cfg, dist, reporter, amp, scaler)
    seed_everything(cfg.seed)

    # 2. The objective: data on the device, models checked against them, optimizers; then the schedules.
    objective.prepare(ctx)
    n_train, bs = objective.n_train, cfg.batch_size
    steps_per_epoch = math.ceil(n_train / bs)
    schedule_call = resolve_schedule(cfg.schedule) if cfg.schedule else None
    schedulers = [build_schedule(schedule_call, o, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch)
                  for o in objective.optimizers.values()] if schedule_call else []
    per_step = schedule_call is not None and schedule_call.entry.interval == "step"  # type: ignore[attr-defined]
    needs_metric = schedule_call is not None and schedule_call.entry.needs_metric  # type: ignore[attr-defined]
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    generators = {"batch": batch_gen, **objective.generators}
    monitor = objective.monitor
    es = cfg.early_stopping if monitor is not None else None
    lr_of = next(iter(objective.optimizers.values()))  # the logged learning rate

    # 3. Resume: weights, optimizers, schedules, RNGs and the loop's own state from run_dir/last; then
    #    the run's files (only now: a resume that failed above has rewritten nothing).
    st = RunState()
    if resume is not None:
        st = _restore(Path(resume), objective, schedulers, scaler, generators, cfg, reporter, dist)
    objective.wrap(ctx)  # DDP: rank 0's (restored) weights reach every rank
    text = history_text(st.history)  # metrics.jsonl, grown by one line per epoch
    cfg_dict = cfg.to_dict()
    if dist.main:
        if on_start is not None:
            on_start()
        write_json(rd.config, {"train": cfg_dict, "objective": objective.name, **objective.config()})
        ckpt.atomic_write(rd.metrics, text)  # a resumed run continues the records it saved
    tb = _tensorboard(rd.root, reporter) if cfg.tensorboard and dist.main else None
    saver = _Saver(rd, objective.module, cfg, dist.main, st.epoch if resume is not None else 0)

    def state_dict(cursor: dict[str, Any] | None = None, resumable: bool = True) -> dict[str, Any]:
        small = {"objective": objective.name, "epoch": st.epoch, "step": st.step, "best": st.best,
                 "best_epoch": st.best_epoch, "monitor": monitor, "config": cfg_dict}
        if not resumable:  # best/: the weights are what matters; resuming always starts from last/
            return small
        return {**small, "bad_epochs": st.bad_epochs, "history": text, "cursor": cursor,
                "optimizers": {k: o.state_dict() for k, o in objective.optimizers.items()},
                "schedulers": [copy.deepcopy(s.state_dict()) for s in schedulers],
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": ckpt.rng_state(), "generators": {k: g.get_state() for k, g in generators.items()}}

    # 4. Epochs: the objective's step on shuffled global batches, records, checkpoints, maybe stop early.
    stopped_early = False
    epoch, ep, logs = st.epoch, None, []
    with reporter, _StopFlag(reporter, enabled=not dist.enabled) as stop, \
            open(rd.metrics if dist.main else os.devnull, "a", encoding="utf-8") as log:
        try:
            for epoch in range(st.epoch + 1, cfg.epochs + 1):
                t0 = time.perf_counter()
                objective.module.train()
                dist.seed_epoch(cfg.seed, epoch, *objective.generators.values())  # DDP: per-rank draws, replayable
                # 4a. this epoch's batch order (or the saved one, when resuming mid-epoch); this rank's share of it
                cursor, st.cursor = st.cursor, None
                perm = cursor["perm"].to(device) if cursor else torch.randperm(n_train, generator=batch_gen).to(device)
                ep = Epoch(epoch, perm, perm.split(bs), cursor["batch"] if cursor else 0, cursor)
                plan = dist.plan(ep.chunks, cfg.accumulate)  # per batch: this rank's micro-batches and weights
                logs = list(cursor["logs"].to(device).unbind()) if cursor else []  # per step, on the device
                objective.start_epoch(ctx, ep)
                reporter.start_epoch(epoch, cfg.epochs, len(ep.chunks), ep.first)
                # 4b. the batch loop
                logs = _batches(objective, ctx, ep, plan, logs, stop, schedulers if per_step else [], st)
                # 4c. the epoch record: sample-weighted means of the step values, then the objective's additions
                sizes = torch.tensor([len(c) for c in ep.chunks], dtype=torch.float64)
                means = (torch.stack(logs).double().cpu() * sizes[:, None]).sum(0) / n_train
                record: dict[str, Any] = {"epoch": epoch, "epochs": cfg.epochs,
                                          "train": dict(zip(objective.log_names, means.tolist()))}
                objective.end_epoch(ctx, ep, record)
                record["lr"] = lr_of.param_groups[0]["lr"]
                record["seconds"] = round(time.perf_counter() - t0, 4)
                record = dist.from_main(lambda r=record: r)  # DDP: rank 0's record drives every rank's decisions
                st.history.append(record)
                st.epoch = epoch
                line = history_text([record])
                text += line
                log.write(line)  # one whole line per epoch, appended; resume rewrites the file from state
                log.flush()
                reporter.end_epoch(record)
                if tb is not None:
                    _tensorboard_record(tb, record)
                # 4d. epoch-level schedules, best/last checkpoints, early stopping
                for s in schedulers if not per_step else ():
                    if needs_metric:  # plateau: its monitor, else the validation loss (training loss without val)
                        s.step(monitor_value(record, schedule_call.kwargs.get("monitor")  # type: ignore[union-attr]
                                             or ("val.loss" if "val" in record else "train.loss")))
                    else:
                        s.step()
                if monitor is not None:
                    value = monitor_value(record, monitor)
                    if _improved(value, st.best, objective.mode, es.min_delta if es else 0.0):
                        st.best, st.best_epoch, st.bad_epochs = value, epoch, 0
                        saver.keep_best(state_dict(resumable=False))
                    else:
                        st.bad_epochs += 1
                stop_now = es is not None and st.bad_epochs >= es.patience
                if saver.due(epoch) or epoch == cfg.epochs or stop_now:
                    saver.save(epoch, state_dict())
                if on_epoch is not None:
                    on_epoch(record)
                if stop_now:
                    reporter.note(f"early stopping: {monitor} has not improved for {es.patience} epoch(s); "
                                  f"best {st.best:.4g} at epoch {st.best_epoch}")
                    stopped_early = True
                    break
        except _Interrupted as i:  # Ctrl-C / SIGTERM at a batch boundary: a resumable mid-epoch checkpoint
            cursor = {"perm": ep.perm.cpu(), "batch": i.batch,
                      "logs": torch.stack(logs).cpu() if logs else torch.empty(0, len(objective.log_names)),
                      **objective.cursor()}
            saver.save(st.epoch, state_dict(cursor))
            saver.files.flush()
            raise TrainingInterrupted(f"training interrupted at epoch {epoch}, step {i.batch}/{len(ep.chunks)}; a "
                                      f"resumable checkpoint is in {rd.last}", hint=_resume_hint(rd)) from None
        except _Diverged as d:
            saver.flush_best()
            saver.files.flush()
            raise TrainingDiverged(
                f"{objective.diverged_what} became NaN/Inf at epoch {epoch}, step {d.batch + 1}/{steps_per_epoch}; "
                f"training stopped and {saver.kept()}", hint=objective.diverged_hint) from None
        except KeyboardInterrupt:  # a second Ctrl-C: no new checkpoint, the last one stands
            saver.flush_best()
            saver.files.flush()
            raise TrainingInterrupted(f"training aborted; the last checkpoint (epoch {saver.saved_epoch}) is in "
                                      f"{rd.last}", hint=_resume_hint(rd)) from None
        finally:
            saver.flush_best()  # also after a crash: the best weights so far reach the disk
            saver.files.close()
            if tb is not None:
                tb.close()

    # 5. The objective's finish (test with the best weights, samples), then results.json.
    test, rep, extra = objective.finish(ctx, rd, st.history)
    result = FitResult(rd.root, st.history, test, rep, monitor or "", st.best_epoch, st.best, stopped_early,
                       st.epoch)
    if dist.main:
        write_json(rd.results, {"objective": objective.name, **extra, "test": test, "report": rep,
                                "monitor": monitor or "", "best_epoch": st.best_epoch, "best_value": st.best,
                                "stopped_early": stopped_early, "epochs_run": st.epoch})
    return result


def _tensorboard_record(tb, record: dict[str, Any]) -> None:
    """One epoch's values as TensorBoard scalars."""
    for split in ("train", "val"):
        for k, v in (record.get(split) or {}).items():
            tb.add_scalar(f"{split}/{k}", v, record["epoch"])
    tb.add_scalar("lr", record["lr"], record["epoch"])


# ---------------------------------------------------------------- resume

def _restore(resume: Path, objective: Objective, schedulers: list, scaler, generators: dict[str, torch.Generator],
             cfg: TrainConfig, reporter: Progress, dist: distributed.Dist) -> RunState:
    """Weights, optimizer/schedule/scaler states, RNGs and the loop state from a run's last checkpoint."""

    def read() -> tuple[Path, dict[str, Any]]:  # rank 0 reads; DDP hands its weights on when it wraps the model
        where = RunDir(resume).last if RunDir(resume).has_last() else resume  # a run, or a checkpoint in it
        state = ckpt.load_state(where)
        saved = state.get("objective", objective.name)
        if saved != objective.name:
            raise ckpt.CheckpointError(f"{where} is a checkpoint of a {saved} run; this spec trains a "
                                       f"{objective.name} objective", hint="resume with the spec the run was "
                                                                           "started with")
        ckpt.load_weights(objective.module, ckpt.resolve_dir(where))
        return where, state

    where, state = dist.from_main(read)
    for name, optimizer in objective.optimizers.items():
        try:
            saved_groups, groups = state["optimizers"][name]["param_groups"], optimizer.state_dict()["param_groups"]
            if [sorted(g) for g in saved_groups] != [sorted(g) for g in groups]:  # torch loads any optimizer's
                raise ValueError(f"it was saved by another optimizer (settings "  # state, then fails in step()
                                 f"{', '.join(sorted(set(saved_groups[0]) ^ set(groups[0])))} differ)")
            optimizer.load_state_dict(state["optimizers"][name])
        except (ValueError, KeyError, RuntimeError, TypeError, IndexError) as e:
            raise ckpt.CheckpointError(f"cannot resume the {name} optimizer state from {where}: "
                                       f"{type(e).__name__}: {e}",
                                       hint="resume with the optimizer the run was started with") from None
    for s, sd in zip(schedulers, state.get("schedulers") or []):
        s.load_state_dict(sd)
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    ckpt.set_rng_state(state["rng"])
    for name, g in generators.items():
        saved_gen = state["generators"][name]
        g.set_state(saved_gen.cpu())  # a CUDA generator's state is a CPU ByteTensor too; set_state refuses others
    old = state.get("config") or {}
    now = cfg.to_dict()
    changed = [k for k in RESUME_SENSITIVE if old.get(k) != now.get(k)]
    if changed:
        reporter.note(f"note: resuming with changed {', '.join(changed)}; the run will not match an "
                      "uninterrupted one")
    st = RunState(epoch=state["epoch"], step=state["step"], best=state["best"], best_epoch=state["best_epoch"],
                  bad_epochs=state["bad_epochs"], history=[json.loads(line) for line in state["history"].splitlines()],
                  cursor=state.get("cursor"))
    at = f"epoch {st.epoch + 1}, step {st.cursor['batch']}" if st.cursor else f"the end of epoch {st.epoch}"
    reporter.note(f"resuming from {where} at {at}")
    return st


def _resume_hint(rd: RunDir) -> str:
    """How to continue this run: the spec it was started from (run.json), else the copy in the run."""
    import shlex

    spec = rd.read("run_json").get("spec") if rd.run_json.exists() else None
    run = shlex.quote(str(rd.root))
    if spec is None and not rd.spec.exists():
        return f"resume with: netc train SPEC --resume {run} (or resume={str(rd.root)!r} from Python)"
    return f"resume with: netc train {shlex.quote(str(spec or rd.spec))} --resume {run}"  # paste-able


def _tensorboard(run_dir: Path, reporter: Progress):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        reporter.note("note: tensorboard is not installed; skipping TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(RunDir(run_dir).tensorboard))

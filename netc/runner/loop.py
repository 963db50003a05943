"""The training loop: ``fit`` (train, validate, checkpoint, stop, test), ``evaluate`` and ``predict``.

``fit`` reads top to bottom in numbered steps. The batch loop is kept as lean
as a hand-written one: data are tensors on the device, a batch is an index
slice of a seeded ``randperm``, per-batch losses and outputs stay on the device
and are read once per epoch (and at throttled progress updates, which also
catch a NaN/Inf loss early).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netc.diagnostics import DataError, NetcError
from netc.runner import checkpoint as ckpt
from netc.runner import distributed
from netc.runner.augment import Augment
from netc.runner.config import TrainConfig, check_monitor
from netc.runner.data import Dataset, Split, fit_targets, load_data
from netc.runner.metrics import METRICS, Outputs, compute, report
from netc.runner.objectives import (
    SCHEDULES,
    build_loss,
    build_optimizer,
    build_schedule,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)
from netc.runner.progress import Progress
from netc.runner.sources import Inputs


class TrainingDiverged(NetcError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    kind = "train"
    exit_code = 3


class TrainingInterrupted(NetcError):
    """Ctrl-C during training; a resumable checkpoint was saved."""

    kind = "train"
    exit_code = 130


@dataclass
class FitResult:
    """What ``fit`` returns: per-epoch history, the best epoch, and metrics on the test split."""

    run_dir: Path
    history: list[dict[str, Any]]  # one record per epoch, as in metrics.jsonl
    test: dict[str, float]  # test loss and metrics (plus baselines such as naive_rmse); {} without a test split
    report: dict[str, Any]  # per-class precision/recall/f1 and confusion matrix (classification)
    monitor: str  # the value that chose the best checkpoint, e.g. val.loss
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    epochs_run: int


@dataclass
class _RunState:
    """The loop's own state, checkpointed with the model so a resumed run continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    cursor: dict[str, Any] | None = None  # set when interrupted mid-epoch: perm, next batch, partial results


# ---------------------------------------------------------------- small helpers

AUTO_CHECKPOINT_SECONDS = 10.0  # checkpoint_every: 0 saves last/ (and best/) at most this often, and at the end


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


def default_loss(task: str | None) -> str:
    return "mse" if task == "regression" else "cross_entropy"


def _forward_all(model: torch.nn.Module, split: Split, batch_size: int, amp) -> torch.Tensor:
    """Outputs for every sample of a split, in order, as float32 on the device."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(split), batch_size):
            with amp:
                outs.append(model(*(x[i:i + batch_size] for x in split.xs)).float())
    return torch.cat(outs) if outs else torch.empty(0)


def _forward_split(dist: distributed.Dist, net: torch.nn.Module, split: Split, batch_size: int, amp) -> torch.Tensor:
    """``_forward_all`` over a whole split; under DDP each rank runs a contiguous share and all are gathered."""
    if not dist.enabled:
        return _forward_all(net, split, batch_size, amp)
    model = ckpt._unwrap(net)  # eager, outside DDP: no collectives inside forward, shares may differ in size
    dist.broadcast_module(model, buffers_only=True)  # rank 0's BatchNorm statistics, the ones it checkpoints
    lo, hi = dist.rows(len(split))
    rows = slice(lo, hi) if hi > lo else slice(0, 1)  # an empty share runs one row, for the output's shape
    out = _forward_all(model, Split(tuple(x[rows] for x in split.xs), split.y[rows]), batch_size, amp)[:hi - lo]
    return dist.gather_rows(out, torch.arange(lo, hi, device=out.device), len(split))


def to_outputs(ds: Dataset, out: torch.Tensor, y: torch.Tensor, probs: bool = True) -> Outputs:
    """Model outputs and targets as numpy arrays in the form the metrics expect.

    ``probs=False`` skips the probabilities (only AUC needs them): argmax on the device, ids to the host.
    """
    if ds.task == "classification":
        if ds.binary:  # one logit per sample (bce)
            logit = out.float().reshape(-1)
            pred = (logit > 0).long()
            p = torch.stack([1 - torch.sigmoid(logit), torch.sigmoid(logit)], dim=1) if probs else None
        else:
            flat = out.float().reshape(-1, out.shape[-1])
            pred = flat.argmax(dim=1)
            p = torch.softmax(flat, dim=1) if probs else None
        return Outputs("classification", y.reshape(-1).long().cpu().numpy(), pred.cpu().numpy(),
                       p.cpu().double().numpy() if p is not None else None,
                       2 if ds.binary else out.shape[-1])
    shift, scale = ds.target_scale
    n = len(y)
    pred = out.float().reshape(n, -1).cpu().numpy().astype(np.float64) * scale + shift
    true = y.float().reshape(n, -1).cpu().numpy().astype(np.float64) * scale + shift
    return Outputs("regression", true, pred)


def _clean(v: Any) -> Any:
    """JSON-safe floats (NaN/Inf -> None)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    return v


def _history_text(history: list[dict[str, Any]]) -> str:
    """metrics.jsonl content: one JSON record per epoch."""
    return "".join(json.dumps(_clean(r)) + "\n" for r in history)


def _monitor_value(record: dict[str, Any], monitor: str) -> float:
    split, name = monitor.split(".", 1)
    v = (record.get(split) or {}).get(name)
    return float("nan") if v is None else float(v)


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class _StopFlag:
    """SIGINT sets ``requested``; the loop stops at the next batch boundary. A second Ctrl-C aborts.

    Off (``enabled=False``) under DDP: ranks would stop at different batches; Ctrl-C ends the job and
    the last checkpoint is the place to resume from.
    """

    def __init__(self, progress: Progress, enabled: bool = True):
        self.requested = False
        self._progress = progress
        self._previous: Any = None
        self._enabled = enabled

    def __enter__(self) -> _StopFlag:
        if self._enabled and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._progress.note("interrupt: saving a resumable checkpoint after this step (Ctrl-C again to abort)")


class _Diverged(Exception):
    def __init__(self, batch: int):
        self.batch = batch


def _first_bad(losses: list[torch.Tensor], start: int) -> int | None:
    """Index of the first non-finite loss at or after ``start`` (one device read)."""
    if start >= len(losses):
        return None
    chunk = torch.stack(losses[start:])
    ok = torch.isfinite(chunk)
    if bool(ok.all()):
        return None
    return start + int((~ok).nonzero()[0, 0])


# ---------------------------------------------------------------- fit

def fit(model: torch.nn.Module, inputs: Inputs, cfg: TrainConfig, run_dir: str | Path,
        resume: str | Path | None = None, *, data: Dataset | None = None,
        progress: Progress | bool = True) -> FitResult:
    """Train ``model`` as ``cfg`` says, writing checkpoints, metrics and plots to ``run_dir``.

    ``inputs`` are the spec's declared inputs ``(name, per-sample shape, dtype)``; ``resume`` is a run
    directory whose ``last/`` checkpoint to continue from. Raises TrainingDiverged on a NaN/Inf loss
    and TrainingInterrupted (after saving) on Ctrl-C.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    reporter = progress if isinstance(progress, Progress) else Progress(enabled=bool(progress))

    # 1. Device (cuda:LOCAL_RANK under DDP), precision and seeds; only rank 0 reports and writes files.
    dist = distributed.init(resolve_device(cfg.device))
    device = dist.device
    if not dist.main:
        reporter = Progress(enabled=False)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    if amp_dtype is not None and device.type != "cuda":
        reporter.note(f"note: precision {cfg.precision} needs CUDA; training in fp32 on {device.type}")
        amp_dtype = None
    amp = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    seed_everything(cfg.seed)

    # 2. Data as tensors on the device; one probe forward pass checks targets against the model's outputs.
    ds, loss_call = _data_and_loss(cfg, inputs, device, data)
    loss_task = loss_call.entry.task  # type: ignore[attr-defined]
    model.to(device)
    out_shape = _probe(model, ds.train)
    ds = fit_targets(ds, out_shape, loss_task)
    metric_names = cfg.metric_names(ds.task)
    for name in metric_names:
        if METRICS[name].task != ds.task:
            raise DataError(f"train.metrics: '{name}' is a {METRICS[name].task} metric but this run is {ds.task}",
                            hint=f"use {', '.join(k for k, m in METRICS.items() if m.task == ds.task)}")
    es = cfg.early_stopping
    monitor = es.monitor if es else ("val.loss" if ds.val is not None else "train.loss")
    check_monitor(monitor, metric_names, ds.val is not None, "train.early_stopping.monitor")
    mode = cfg.monitor_mode() if es else "min"

    # 3. Objective: loss, optimizer, schedule, augmentation, generators.
    sequence = ds.task == "classification" and len(out_shape) > 1
    loss_fn = build_loss(loss_call, sequence=sequence)
    optimizer = build_optimizer(resolve_optimizer(cfg.optimizer), model.parameters())
    n_train, bs = len(ds.train), cfg.batch_size
    steps_per_epoch = math.ceil(n_train / bs)
    schedule_call = resolve_schedule(cfg.schedule) if cfg.schedule else None
    scheduler = (build_schedule(schedule_call, optimizer, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch)
                 if schedule_call else None)
    per_step = schedule_call is not None and schedule_call.entry.interval == "step"  # type: ignore[attr-defined]
    augment = Augment(cfg.augment, [tuple(x.shape[1:]) for x in ds.train.xs], [x.dtype for x in ds.train.xs])
    do_augment = bool(augment)
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    collect = bool(metric_names)  # keep train outputs for train metrics (read once per epoch)
    need_probs = any(METRICS[m].needs_probs for m in metric_names)

    # 4. Resume: weights, optimizer, schedule, RNGs and the loop's own state from run_dir/last.
    st = _RunState()
    if resume is not None:
        st = _restore(Path(resume), model, optimizer, scheduler, scaler, batch_gen, aug_gen, cfg, reporter, dist)
    net = dist.wrap(model, cfg.sync_batchnorm, reporter.note)  # DDP: rank 0's (restored) weights reach every rank
    net = torch.compile(net) if cfg.compile else net
    no_sync = dist.no_sync(net)  # accumulating micro-batches skip DDP's gradient all-reduce
    history_text = _history_text(st.history)  # metrics.jsonl, grown by one line per epoch
    cfg_dict = cfg.to_dict()
    if dist.main:
        _write_json(run_dir / "config.json", {"train": cfg_dict, "inputs": [list(map(_plain, i)) for i in inputs],
                                             "preprocess": preprocess_info(ds)})
        ckpt.atomic_write(run_dir / "metrics.jsonl", history_text)  # a resumed run continues the records it saved
    tb = _tensorboard(run_dir, reporter) if cfg.tensorboard and dist.main else None
    files = ckpt.Writer(enabled=dist.main)  # checkpoints are written off the loop's clock, by rank 0 only
    best: tuple[dict, dict] | None = None  # best weights not yet on disk (saved together with last/)
    saved_at, saved_epoch = time.perf_counter(), (st.epoch if resume is not None else 0)

    def save_best() -> None:
        nonlocal best
        if best is not None:
            files.checkpoint(run_dir / "best", *best)
            best = None

    def state_dict(cursor: dict[str, Any] | None = None, resumable: bool = True) -> dict[str, Any]:
        small = {"epoch": st.epoch, "step": st.step, "best": st.best, "best_epoch": st.best_epoch,
                 "monitor": monitor, "config": cfg_dict}
        if not resumable:  # best/: the weights are what matters; resuming always starts from last/
            return small
        return {**small, "bad_epochs": st.bad_epochs, "history": history_text, "cursor": cursor,
                "optimizer": optimizer.state_dict(),
                "scheduler": copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": ckpt.rng_state(), "batch_gen": batch_gen.get_state(), "aug_gen": aug_gen.get_state()}

    # 5. Epochs: train on shuffled batches, validate, log, checkpoint, maybe stop early.
    stopped_early = False
    with reporter, _StopFlag(reporter, enabled=not dist.enabled) as stop, \
            open(run_dir / "metrics.jsonl" if dist.main else os.devnull, "a", encoding="utf-8") as log:
        try:
            for epoch in range(st.epoch + 1, cfg.epochs + 1):
                t0 = time.perf_counter()
                net.train()
                dist.seed_epoch(cfg.seed, epoch, aug_gen)  # DDP: per-rank dropout/augmentation draws, replayable
                # 5a. this epoch's batch order (or the saved one, when resuming mid-epoch); this rank's share of it
                cursor, st.cursor = st.cursor, None
                perm = cursor["perm"].to(device) if cursor else torch.randperm(n_train, generator=batch_gen).to(device)
                chunks = perm.split(bs)  # the global batches
                steps = dist.plan(chunks, cfg.accumulate)  # per batch: this rank's micro-batches and loss weights
                first = cursor["batch"] if cursor else 0
                losses: list[torch.Tensor] = list(cursor["losses"].to(device).unbind()) if cursor else []
                outs: list[torch.Tensor] = ([cursor["outputs"].to(device)] if cursor and collect and dist.main
                                            else [])  # under DDP, rank 0 holds the outputs saved before the cursor
                checked = 0
                reporter.start_epoch(epoch, cfg.epochs, len(chunks), first)
                x_all, y_all = ds.train.xs, ds.train.y
                # 5b. the batch loop
                for b in range(first, len(chunks)):
                    if stop.requested:
                        raise _Interrupted(epoch, b, perm, losses, outs)
                    optimizer.zero_grad(set_to_none=True)
                    step_loss = None
                    for j, (idx, weight) in enumerate(steps[b]):  # one micro-batch unless accumulating
                        xb = tuple(x[idx] for x in x_all)
                        if do_augment:
                            xb = augment(xb, aug_gen)
                        with no_sync(j + 1 < len(steps[b])):
                            with amp:
                                out = net(*xb)
                                loss = loss_fn(out, y_all[idx])
                            if weight != 1.0:  # share of the global batch mean (see distributed.py)
                                loss = loss * weight
                            (scaler.scale(loss) if scaler is not None else loss).backward()
                        step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
                        if collect and weight:
                            outs.append(out.detach())
                    if scaler is not None:
                        if cfg.clip_grad_norm is not None:
                            scaler.unscale_(optimizer)
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        if cfg.clip_grad_norm is not None:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                        optimizer.step()
                    if per_step:
                        scheduler.step()  # type: ignore[union-attr]
                    st.step += 1
                    losses.append(step_loss)
                    if reporter.due():  # throttled: the only mid-epoch device reads
                        bad = None if dist.enabled else _first_bad(losses, checked)  # DDP: checked at the end
                        if bad is not None:
                            raise _Diverged(bad)
                        checked = len(losses)
                        reporter.update(b + 1, lambda ls=losses: float(torch.stack(ls[-20:]).float().mean()))
                if dist.enabled:  # the global batches' losses (rank-weighted shares averaged), alike on all ranks
                    losses, checked = list(dist.mean(torch.stack(losses)).unbind()), 0
                bad = _first_bad(losses, checked)
                if bad is not None:
                    raise _Diverged(bad)
                # 5c. epoch summary: train loss/metrics from the batches, validation over the whole split
                sizes = torch.tensor([len(c) for c in chunks], dtype=torch.float64)
                train_loss = float((torch.stack(losses).double().cpu() * sizes).sum() / n_train)
                record: dict[str, Any] = {"epoch": epoch, "epochs": cfg.epochs, "train": {"loss": train_loss}}
                if collect:
                    out_all = torch.cat(outs)
                    if dist.enabled:  # every rank's outputs, in permutation order
                        held = first * bs if cursor and dist.main else 0
                        out_all = dist.gather_rows(out_all, dist.positions(n_train, bs, first, held), n_train)
                    o = to_outputs(ds, out_all, y_all[perm], need_probs)
                    record["train"].update(compute(o, metric_names))
                if ds.val is not None:
                    net.eval()
                    vout = _forward_split(dist, net, ds.val, cfg.eval_batch_size, amp)
                    record["val"] = {"loss": float(loss_fn(vout, ds.val.y))}
                    record["val"].update(compute(to_outputs(ds, vout, ds.val.y, need_probs), metric_names))
                record["lr"] = optimizer.param_groups[0]["lr"]
                record["seconds"] = round(time.perf_counter() - t0, 4)
                record = dist.from_main(lambda r=record: r)  # DDP: rank 0's record drives every rank's decisions
                st.history.append(record)
                st.epoch = epoch
                line = _history_text([record])
                history_text += line
                log.write(line)  # one whole line per epoch, appended; resume rewrites the file from state
                log.flush()
                reporter.end_epoch(record)
                if tb is not None:
                    for split in ("train", "val"):
                        for k, v in (record.get(split) or {}).items():
                            tb.add_scalar(f"{split}/{k}", v, epoch)
                    tb.add_scalar("lr", record["lr"], epoch)
                # 5d. epoch-level schedule, best/last checkpoints, early stopping
                if scheduler is not None and not per_step:
                    if schedule_call.entry.needs_metric:  # type: ignore[union-attr, attr-defined]
                        scheduler.step(_monitor_value(record, "val.loss" if ds.val is not None else "train.loss"))
                    else:
                        scheduler.step()
                value = _monitor_value(record, monitor)
                if _improved(value, st.best, mode, es.min_delta if es else 0.0):
                    st.best, st.best_epoch, st.bad_epochs = value, epoch, 0
                    if dist.main:
                        best = (ckpt.snapshot_weights(model), state_dict(resumable=False))  # to disk with last/
                else:
                    st.bad_epochs += 1
                stop_now = es is not None and st.bad_epochs >= es.patience
                due = (epoch % cfg.checkpoint_every == 0 if cfg.checkpoint_every
                       else time.perf_counter() - saved_at >= AUTO_CHECKPOINT_SECONDS)
                if due or epoch == cfg.epochs or stop_now:
                    save_best()
                    files.checkpoint(run_dir / "last", model, state_dict())
                    saved_at, saved_epoch = time.perf_counter(), epoch
                if stop_now:
                    reporter.note(f"early stopping: {monitor} has not improved for {es.patience} epoch(s); "
                                  f"best {st.best:.4g} at epoch {st.best_epoch}")
                    stopped_early = True
                    break
        except _Interrupted as i:
            cursor = {"perm": i.perm.cpu(), "batch": i.batch,
                      "losses": torch.stack(i.losses).cpu() if i.losses else torch.empty(0),
                      "outputs": torch.cat(i.outs).cpu() if i.outs else torch.empty(0)}
            save_best()
            files.checkpoint(run_dir / "last", model, state_dict(cursor))
            files.flush()
            raise TrainingInterrupted(
                f"training interrupted at epoch {i.epoch}, step {i.batch}/{len(i.perm.split(bs))}; a resumable "
                f"checkpoint is in {run_dir / 'last'}",
                hint=f"resume with: netc train SPEC --resume {run_dir}") from None
        except _Diverged as d:
            save_best()
            files.flush()
            step_in_epoch = d.batch + 1
            keep = (f"the last good checkpoint (epoch {saved_epoch}) is in {run_dir / 'last'}" if saved_epoch
                    else "no checkpoint was saved before that")
            raise TrainingDiverged(
                f"loss became NaN/Inf at epoch {epoch}, step {step_in_epoch}/{steps_per_epoch}; training stopped "
                f"and {keep}",
                hint="lower the learning rate, set train.clip_grad_norm (e.g. 1.0), or check the data for extreme "
                     "values") from None
        except KeyboardInterrupt:
            save_best()
            files.flush()
            raise TrainingInterrupted(f"training aborted; the last checkpoint (epoch {saved_epoch}) is in "
                                      f"{run_dir / 'last'}",
                                      hint=f"resume with: netc train SPEC --resume {run_dir}") from None
        finally:
            save_best()  # also after a crash: the best weights so far reach the disk
            files.close()
            if tb is not None:
                tb.close()

    # 6. Test with the best weights; results.json and plots.
    if dist.main and (run_dir / "best" / ckpt.WEIGHTS).exists():  # written in full: files.close() waited
        ckpt.load_weights(model, run_dir / "best")  # (resumed runs may have found their best before)
    dist.broadcast_module(model)  # DDP: every rank tests rank 0's best weights
    test: dict[str, float] = {}
    rep: dict[str, Any] = {}
    if ds.test is not None:
        net.eval()
        tout = _forward_split(dist, net, ds.test, cfg.eval_batch_size, amp)
        o = to_outputs(ds, tout, ds.test.y)
        test = {"loss": float(loss_fn(tout, ds.test.y)), **compute(o, metric_names), **ds.baselines}
        rep = report(o, ds.class_names)
        reporter.note("test  " + "  ".join(f"{k} {v:.4g}" for k, v in test.items()))
    result = FitResult(run_dir, st.history, test, rep, monitor, st.best_epoch, st.best, stopped_early, st.epoch)
    if not dist.main:
        return result
    _write_json(run_dir / "results.json", {"test": test, "report": rep, "monitor": monitor,
                                           "best_epoch": st.best_epoch, "best_value": st.best,
                                           "stopped_early": stopped_early, "epochs_run": st.epoch})
    if cfg.plots and st.history:
        _plots(run_dir, st.history, rep, reporter)
    return result


class _Interrupted(Exception):
    def __init__(self, epoch: int, batch: int, perm: torch.Tensor, losses: list, outs: list):
        self.epoch, self.batch, self.perm, self.losses, self.outs = epoch, batch, perm, losses, outs


# ---------------------------------------------------------------- fit helpers

def _data_and_loss(cfg: TrainConfig, inputs: Inputs, device: torch.device, data: Dataset | None):
    """The data set and the loss: a configured loss decides the task; otherwise the data do."""
    if cfg.loss is not None:
        loss_call = resolve_loss(cfg.loss)
        task = "regression" if loss_call.entry.task == "regression" else "classification"  # type: ignore[attr-defined]
        ds = data if data is not None else load_data(cfg, inputs, device=device, task=task)
        return ds, loss_call
    ds = data if data is not None else load_data(cfg, inputs, device=device)
    return ds, resolve_loss(default_loss(ds.task))


def _probe(model: torch.nn.Module, split: Split) -> tuple[int, ...]:
    """Per-sample output shape of the model on two training samples (eval mode: no RNG use, no BN update)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*(x[:2] for x in split.xs))
    except Exception as e:  # noqa: BLE001 - any failure here means the data do not fit the model
        shapes = ", ".join(str(tuple(x.shape[1:])) for x in split.xs)
        raise DataError(f"the model failed on training samples of shape {shapes}: {type(e).__name__}: {e}",
                        hint="check that the spec's input: shapes match the data") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise DataError(f"the model returned {type(out).__name__}, expected one tensor",
                        hint="the model's last layer must produce a single output tensor")
    return tuple(out.shape[1:])


def _restore(resume: Path, model, optimizer, scheduler, scaler, batch_gen, aug_gen, cfg: TrainConfig,
             reporter: Progress, dist: distributed.Dist | None = None) -> _RunState:
    dist = dist or distributed.Dist()

    def read() -> tuple[Path, dict[str, Any]]:  # rank 0 reads; DDP hands its weights on when it wraps the model
        where = resume / "last" if (resume / "last").exists() or (resume / ".last.old").exists() else resume
        state = ckpt.load_state(where)
        ckpt.load_weights(model, ckpt.resolve_dir(where))
        return where, state

    where, state = dist.from_main(read)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as e:
        raise ckpt.CheckpointError(f"cannot resume the optimizer state from {where}: {e}",
                                   hint="resume with the optimizer the run was started with") from None
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    ckpt.set_rng_state(state["rng"])
    batch_gen.set_state(state["batch_gen"])
    aug_gen.set_state(state["aug_gen"].to(aug_gen.device) if aug_gen.device.type != "cpu" else state["aug_gen"])
    old = state.get("config") or {}
    now = cfg.to_dict()
    changed = [k for k in ("data", "split", "normalize", "augment", "loss", "batch_size", "seed")
               if old.get(k) != now.get(k)]
    if changed:
        reporter.note(f"note: resuming with changed {', '.join(changed)}; the run will not match an "
                      "uninterrupted one")
    st = _RunState(epoch=state["epoch"], step=state["step"], best=state["best"], best_epoch=state["best_epoch"],
                   bad_epochs=state["bad_epochs"], history=[json.loads(line) for line in state["history"].splitlines()],
                   cursor=state.get("cursor"))
    at = f"epoch {st.epoch + 1}, step {st.cursor['batch']}" if st.cursor else f"the end of epoch {st.epoch}"
    reporter.note(f"resuming from {where} at {at}")
    return st


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _write_json(path: Path, obj: Any) -> None:
    ckpt.atomic_write(path, json.dumps(_clean(obj) if isinstance(obj, dict) else obj, indent=2, default=_plain))


def preprocess_info(ds: Dataset) -> dict[str, Any]:
    """How raw inputs were normalised and how outputs map back (for predict on new data)."""
    def tolist(v):
        return np.asarray(v).tolist()

    return {"task": ds.task, "num_classes": ds.num_classes, "class_names": ds.class_names,
            "inputs": [{"method": n["method"], "shift": tolist(n["shift"]), "scale": tolist(n["scale"])}
                       for n in ds.input_norm],
            "target_shift": tolist(ds.target_scale[0]), "target_scale": tolist(ds.target_scale[1])}


def _tensorboard(run_dir: Path, reporter: Progress):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        reporter.note("note: tensorboard is not installed; skipping TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _plots(run_dir: Path, history: list[dict[str, Any]], rep: dict[str, Any], reporter: Progress) -> None:
    try:
        from netc.runner import plots
    except ImportError:
        reporter.note("note: matplotlib is not installed; skipping plots")
        return
    plots.loss_curves(history, run_dir / "loss.png")
    plots.metric_curves(history, run_dir / "metrics.png")
    if rep.get("confusion_matrix"):
        plots.confusion(rep["confusion_matrix"], rep["classes"], run_dir / "confusion_matrix.png")


# ---------------------------------------------------------------- evaluate / predict

def evaluate(model: torch.nn.Module, inputs: Inputs, cfg: TrainConfig, split: str = "test", *,
             data: Dataset | None = None, device: str | None = None) -> dict[str, Any]:
    """Loss, metrics, baselines and (classification) per-class report of ``model`` on one split."""
    dev = resolve_device(device or cfg.device)
    ds, loss_call = _data_and_loss(cfg, inputs, dev, data)
    loss_task = loss_call.entry.task  # type: ignore[attr-defined]
    model.to(dev)
    out_shape = _probe(model, ds.train)
    ds = fit_targets(ds, out_shape, loss_task)
    part = ds.split(split)
    loss_fn = build_loss(loss_call, sequence=ds.task == "classification" and len(out_shape) > 1)
    model.eval()
    out = _forward_all(model, part, cfg.eval_batch_size, contextlib.nullcontext())
    o = to_outputs(ds, out, part.y)
    names = cfg.metric_names(ds.task)
    result: dict[str, Any] = {"split": split, "samples": len(part), "loss": float(loss_fn(out, part.y)),
                              **compute(o, names)}
    if split == "test":
        result.update(ds.baselines)
    result["report"] = report(o, ds.class_names)
    return result


def predict(model: torch.nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...], *, batch_size: int = 1024,
            preprocess: dict[str, Any] | None = None) -> torch.Tensor:
    """Model outputs for raw inputs ``x`` (one tensor per model input), in eval mode and batches.

    With ``preprocess`` (``config.json``'s entry of a run), inputs are normalised as in training and
    regression outputs are mapped back to the data's units.
    """
    xs = (x,) if isinstance(x, torch.Tensor) else tuple(x)
    if preprocess is not None:
        normed = []
        for t, n in zip(xs, preprocess["inputs"]):
            if n["method"] != "none" and t.is_floating_point():  # stats keep a leading batch axis: broadcast
                t = (t - torch.as_tensor(n["shift"], dtype=t.dtype, device=t.device)) / torch.as_tensor(
                    n["scale"], dtype=t.dtype, device=t.device)
            normed.append(t)
        xs = tuple(normed)
    model.eval()
    device = next((p.device for p in model.parameters()), xs[0].device)
    outs = []
    with torch.inference_mode():
        for i in range(0, len(xs[0]), batch_size):
            outs.append(model(*(t[i:i + batch_size].to(device) for t in xs)).float())
    out = torch.cat(outs)
    if preprocess is not None and preprocess["task"] == "regression":
        shift = torch.as_tensor(preprocess["target_shift"], dtype=out.dtype, device=out.device).reshape(-1)
        scale = torch.as_tensor(preprocess["target_scale"], dtype=out.dtype, device=out.device).reshape(-1)
        out = (out.reshape(len(out), -1) * scale + shift).reshape(out.shape)
    return out


__all__ = [
    "SCHEDULES",
    "FitResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "evaluate",
    "fit",
    "predict",
    "preprocess_info",
    "resolve_device",
    "seed_everything",
    "to_outputs",
]

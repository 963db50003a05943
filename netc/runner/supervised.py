"""Supervised training as an engine objective: one model, a loss against targets, metrics, a test split.

Classification (per sample or per step), regression and forecasting all train here; the data decide
the task unless ``train.loss`` does. Train metrics come from the outputs of the batches themselves
(read once per epoch); validation and test run over their whole split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from netc.diagnostics import DataError
from netc.runner import checkpoint as ckpt
from netc.runner import transfer
from netc.runner.augment import Augment
from netc.runner.config import TrainConfig, check_monitor
from netc.runner.data import Dataset, Split, fit_targets, load_data
from netc.runner.engine import Context, Epoch, Objective
from netc.runner.metrics import METRICS, Outputs, compute, report
from netc.runner.objectives import (
    build_loss,
    build_optimizer,
    loss_context,
    resolve_loss,
    resolve_optimizer,
    resolve_schedule,
)
from netc.runner.rundir import RunDir
from netc.runner.sources import Inputs
from netc.runner.stream import Feed, StreamSplit


class Supervised(Objective):
    """``model(*inputs)`` trained against targets with ``train.loss``; metrics on train, val and test."""

    name = "supervised"
    log_names = ("loss",)

    def __init__(self, model: torch.nn.Module, inputs: Inputs, data: Dataset | None = None):
        self.model, self.inputs, self.data = model, inputs, data
        self.module = model
        self.outs: list[torch.Tensor] = []  # this epoch's train outputs (for train metrics)
        self.frozen: list[torch.nn.Module] = []  # layers of train.freeze, kept in eval mode

    def prepare(self, ctx: Context) -> None:
        """Data on the device, a probe forward pass against the targets, loss, metrics, optimizer."""
        cfg, device = ctx.cfg, ctx.device
        ds, loss_call = data_and_loss(cfg, self.inputs, device, self.data)
        self.model.to(device)
        out_shape = probe(self.model, ds.train)
        ds = fit_targets(ds, out_shape, loss_call.entry.task)  # type: ignore[attr-defined]
        self.ds = ds
        self.metric_names = cfg.metric_names(ds.task)
        for name in self.metric_names:
            if METRICS[name].task != ds.task:
                raise DataError(f"train.metrics: '{name}' is a {METRICS[name].task} metric but this run is "
                                f"{ds.task}",
                                hint=f"use {', '.join(k for k, m in METRICS.items() if m.task == ds.task)}")
        es = cfg.early_stopping
        self.monitor = es.monitor if es else ("val.loss" if ds.val is not None else "train.loss")
        check_monitor(self.monitor, self.metric_names, ds.val is not None, "train.early_stopping.monitor")
        plateau = resolve_schedule(cfg.schedule) if cfg.schedule else None
        if plateau is not None and plateau.kwargs.get("monitor"):  # the data may decide the task (and its metrics)
            check_monitor(plateau.kwargs["monitor"], self.metric_names, ds.val is not None,
                          f"train.schedule: {plateau.name}(monitor=...)")
        self.mode = cfg.monitor_mode() if es else "min"
        self.loss_fn = build_loss(loss_call, loss_context(ds, out_shape))
        # transfer learning: frozen nodes leave the optimizer (and stay in eval mode); lr_mult scales groups
        self.frozen = transfer.freeze(self.model, cfg.freeze)
        opt_call = resolve_optimizer(cfg.optimizer)
        params = (transfer.param_groups(self.model, cfg.lr_mult, opt_call.kwargs["lr"])
                  if cfg.freeze or cfg.lr_mult else self.model.parameters())
        self.optimizer = build_optimizer(opt_call, params)
        self.optimizers = {"model": self.optimizer}
        self.augment = Augment(cfg.augment, list(ds.train.shapes), list(ds.train.dtypes))
        self.streamed = isinstance(ds.train, StreamSplit)  # inputs read by DataLoader workers (stream.py)
        self.feed: Feed | None = None
        self.aug_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.generators = {"augment": self.aug_gen}
        self.do_augment = bool(self.augment)
        self.collect = bool(self.metric_names)  # keep train outputs for train metrics (read once per epoch)
        self.need_probs = any(METRICS[m].needs_probs for m in self.metric_names)
        self.n_train = len(ds.train)

    def wrap(self, ctx: Context) -> None:
        """DDP (rank 0's weights reach every rank), then torch.compile if asked."""
        net = ctx.dist.wrap(self.model, ctx.cfg.sync_batchnorm, ctx.reporter.note)
        self.net = torch.compile(net) if ctx.cfg.compile else net
        self.no_sync = ctx.dist.no_sync(self.net)  # accumulating micro-batches skip DDP's gradient all-reduce

    def start_epoch(self, ctx: Context, ep: Epoch) -> None:
        """Start collecting train outputs (under DDP, rank 0 holds those saved before a cursor)."""
        saved = ep.resumed
        self.outs = [saved["outputs"].to(ctx.device)] if saved and self.collect and ctx.dist.main else []
        if self.streamed:  # the workers read this rank's micro-batches of the engine's plan, from ep.first on
            plan = ctx.dist.plan(ep.perm.cpu().split(ctx.cfg.batch_size), ctx.cfg.accumulate)[ep.first:]
            self.feed = Feed(self.ds.train, [idx.numpy() for micro in plan for idx, _ in micro], ctx.device)
        for m in self.frozen:  # frozen BatchNorm keeps its running statistics: eval mode while the rest trains
            m.eval()

    def step(self, ctx: Context, micro: Sequence[tuple[torch.Tensor, float]]) -> torch.Tensor:
        """Forward, loss and backward on each micro-batch, then one optimizer step."""
        xs, y, feed = () if self.streamed else self.ds.train.xs, self.ds.train.y, self.feed
        self.optimizer.zero_grad(set_to_none=True)
        total = None
        for j, (idx, weight) in enumerate(micro):  # one micro-batch unless accumulating
            xb = tuple(x[idx] for x in xs) if feed is None else feed.take()
            if self.do_augment:
                xb = self.augment(xb, self.aug_gen)
            with self.no_sync(j + 1 < len(micro)):
                with ctx.amp:
                    out = self.net(*xb)
                    loss = self.loss_fn(out, y[idx])
                if weight != 1.0:  # share of the global batch mean (see distributed.py)
                    loss = loss * weight
                ctx.backward(loss)
            total = loss.detach() if total is None else total + loss.detach()
            if self.collect and weight:
                self.outs.append(out.detach())
        ctx.update(self.optimizer, self.model.parameters)
        return total.reshape(1)  # type: ignore[union-attr]

    def end_epoch(self, ctx: Context, ep: Epoch, record: dict[str, Any]) -> None:
        """Train metrics from the collected outputs; validation loss and metrics over the whole split."""
        ds, dist = self.ds, ctx.dist
        self.feed = None  # the epoch's loader workers end here, before validation starts its own
        if self.collect:
            out_all = torch.cat(self.outs)
            if dist.enabled:  # every rank's outputs, in permutation order
                held = ep.first * ctx.cfg.batch_size if ep.resumed and dist.main else 0
                out_all = dist.gather_rows(out_all, dist.positions(self.n_train, ctx.cfg.batch_size, ep.first, held),
                                           self.n_train)
            o = to_outputs(ds, out_all, ds.train.y[ep.perm], self.need_probs)
            record["train"].update(compute(o, self.metric_names))
        self.outs = []
        if ds.val is not None:
            self.net.eval()
            vout = forward_split(dist, self.net, ds.val, ctx.cfg.eval_batch_size, ctx.amp)
            record["val"] = {"loss": float(self.loss_fn(vout, ds.val.y))}
            record["val"].update(compute(to_outputs(ds, vout, ds.val.y, self.need_probs), self.metric_names))

    def cursor(self) -> dict[str, Any]:
        """The train outputs collected before the interruption (for the epoch's train metrics)."""
        return {"outputs": torch.cat(self.outs).cpu() if self.outs else torch.empty(0)}

    def config(self) -> dict[str, Any]:
        """The declared inputs and the preprocessing, for eval and predict on new data."""
        return {"inputs": [[list(v) if isinstance(v, tuple) else v for v in i] for i in self.inputs],
                "preprocess": preprocess_info(self.ds)}

    def finish(self, ctx: Context, rd: RunDir, history: list[dict[str, Any]]
               ) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
        """Test with the best weights; loss, metric and confusion plots."""
        dist = ctx.dist
        if dist.main and (rd.best / ckpt.WEIGHTS).exists():  # written in full: the writer was closed
            ckpt.load_weights(self.model, rd.best)  # (resumed runs may have found their best before)
        dist.broadcast_module(self.model)  # DDP: every rank tests rank 0's best weights
        test: dict[str, float] = {}
        rep: dict[str, Any] = {}
        ds = self.ds
        if ds.test is not None:
            self.net.eval()
            tout = forward_split(dist, self.net, ds.test, ctx.cfg.eval_batch_size, ctx.amp)
            o = to_outputs(ds, tout, ds.test.y)
            test = {"loss": float(self.loss_fn(tout, ds.test.y)), **compute(o, self.metric_names), **ds.baselines}
            rep = report(o, ds.class_names)
            ctx.reporter.note("test  " + "  ".join(f"{k} {v:.4g}" for k, v in test.items()))
        if dist.main and ctx.cfg.plots and history:
            _plots(rd, history, rep, ctx.reporter)
        return test, rep, {}


# ---------------------------------------------------------------- shared with evaluate

def default_loss(task: str | None) -> str:
    """The loss when the spec names none: mse for regression, cross-entropy otherwise."""
    return "mse" if task == "regression" else "cross_entropy"


def data_and_loss(cfg: TrainConfig, inputs: Inputs, device: torch.device, data: Dataset | None):
    """The data set and the loss: a configured loss decides the task; otherwise the data do."""
    if cfg.loss is not None:
        loss_call = resolve_loss(cfg.loss)
        task = "regression" if loss_call.entry.task == "regression" else "classification"  # type: ignore[attr-defined]
        ds = data if data is not None else load_data(cfg, inputs, device=device, task=task)
        return ds, loss_call
    ds = data if data is not None else load_data(cfg, inputs, device=device)
    return ds, resolve_loss(default_loss(ds.task))


def probe(model: torch.nn.Module, split: Split) -> tuple[int, ...]:
    """Per-sample output shape of the model on two training samples (eval mode: no RNG use, no BN update)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*split.head(2))
    except Exception as e:  # noqa: BLE001 - any failure here means the data do not fit the model
        shapes = ", ".join(str(s) for s in split.shapes)
        raise DataError(f"the model failed on training samples of shape {shapes}: {type(e).__name__}: {e}",
                        hint="check that the spec's input: shapes match the data") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise DataError(f"the model returned {type(out).__name__}, expected one tensor",
                        hint="the model's last layer must produce a single output tensor")
    return tuple(out.shape[1:])


def forward_all(model: torch.nn.Module, split: Split, batch_size: int, amp) -> torch.Tensor:
    """Outputs for every sample of a split, in order, as float32 on the device."""
    outs = []
    with torch.inference_mode():
        if isinstance(split, StreamSplit):  # read in order by the workers
            for xb in split.batches(batch_size):
                with amp:
                    outs.append(model(*xb).float())
        else:
            for i in range(0, len(split), batch_size):
                with amp:
                    outs.append(model(*(x[i:i + batch_size] for x in split.xs)).float())
    return torch.cat(outs) if outs else torch.empty(0)


def forward_split(dist, net: torch.nn.Module, split: Split, batch_size: int, amp) -> torch.Tensor:
    """``forward_all`` over a whole split; under DDP each rank runs a contiguous share and all are gathered."""
    if not dist.enabled:
        return forward_all(net, split, batch_size, amp)
    model = ckpt._unwrap(net)  # eager, outside DDP: no collectives inside forward, shares may differ in size
    dist.broadcast_module(model, buffers_only=True)  # rank 0's BatchNorm statistics, the ones it checkpoints
    lo, hi = dist.rows(len(split))
    rows = slice(lo, hi) if hi > lo else slice(0, 1)  # an empty share runs one row, for the output's shape
    out = forward_all(model, split.part(rows.start, rows.stop), batch_size, amp)[:hi - lo]
    return dist.gather_rows(out, torch.arange(lo, hi, device=out.device), len(split))


def to_outputs(ds: Dataset, out: torch.Tensor, y: torch.Tensor, probs: bool = True) -> Outputs:
    """Model outputs and targets as numpy arrays in the form the metrics expect.

    ``probs=False`` skips the probabilities (only AUC needs them): argmax on the device, ids to the host.
    """
    if ds.task == "classification":
        if not ds.binary and y.is_floating_point():  # probability-row targets: their likeliest class
            y = y.argmax(-1)
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


def preprocess_info(ds: Dataset) -> dict[str, Any]:
    """How raw inputs were normalised and how outputs map back (for predict on new data)."""
    def tolist(v):
        return np.asarray(v).tolist()

    return {"task": ds.task, "num_classes": ds.num_classes, "class_names": ds.class_names,
            "inputs": [{"method": n["method"], "shift": tolist(n["shift"]), "scale": tolist(n["scale"])}
                       for n in ds.input_norm],
            "target_shift": tolist(ds.target_scale[0]), "target_scale": tolist(ds.target_scale[1])}


def _plots(rd: RunDir, history: list[dict[str, Any]], rep: dict[str, Any], reporter) -> None:
    try:
        from netc.runner import plots
    except ImportError:
        reporter.note("note: matplotlib is not installed; skipping plots")
        return
    run = rd.root.name
    plots.loss_curves(history, rd.plot("loss"), run)
    plots.metric_curves(history, rd.plot("metrics"), run)
    if rep.get("confusion_matrix"):
        plots.confusion(rep["confusion_matrix"], rep["classes"], rd.plot("confusion_matrix"), run, "test")

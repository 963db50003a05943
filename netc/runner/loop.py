"""The training entry points: ``fit`` (supervised training on the engine), ``evaluate`` and ``predict``.

The loop itself is ``engine.train``; ``fit`` hands it the supervised objective.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from netc.diagnostics import Span
from netc.runner.config import TrainConfig
from netc.runner.data import Dataset, fit_targets
from netc.runner.engine import (
    FitResult,
    TrainingDiverged,
    TrainingInterrupted,
    resolve_device,
    seed_everything,
    train,
)
from netc.runner.metrics import compute, report
from netc.runner.objectives import SCHEDULES, build_loss, loss_context
from netc.runner.progress import Progress
from netc.runner.sources import Inputs
from netc.runner.supervised import (
    Supervised,
    data_and_loss,
    forward_all,
    preprocess_info,
    probe,
    to_outputs,
)


def fit(model: torch.nn.Module, inputs: Inputs, cfg: TrainConfig, run_dir: str | Path,
        resume: str | Path | None = None, *, data: Dataset | None = None,
        progress: Progress | bool = True, on_start: Callable[[], None] | None = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None, init_span: Span | None = None) -> FitResult:
    """Train ``model`` as ``cfg`` says, writing checkpoints, metrics and plots to ``run_dir``.

    ``inputs`` are the spec's declared inputs ``(name, per-sample shape, dtype)``; ``resume`` is a run
    directory whose ``last/`` checkpoint to continue from. Raises TrainingDiverged on a NaN/Inf loss
    and TrainingInterrupted (after saving) on Ctrl-C or SIGTERM. A fresh run with ``train.init_from``
    starts from that run's weights (errors located at ``init_span``, the spec's ``init_from``).
    """
    if cfg.init_from is not None and resume is None:
        import sys

        from netc.runner.transfer import initialise

        initialise(model, cfg.init_from, init_span, note=lambda s: print(s, file=sys.stderr) if progress else None)
    return train(Supervised(model, inputs, data), cfg, run_dir, resume, progress=progress,
                 on_start=on_start, on_epoch=on_epoch)


# ---------------------------------------------------------------- evaluate / predict

def evaluate(model: torch.nn.Module, inputs: Inputs, cfg: TrainConfig, split: str = "test", *,
             data: Dataset | None = None, device: str | None = None) -> dict[str, Any]:
    """Loss, metrics, baselines and (classification) per-class report of ``model`` on one split."""
    dev = resolve_device(device or cfg.device)
    ds, loss_call = data_and_loss(cfg, inputs, dev, data)
    loss_task = loss_call.entry.task  # type: ignore[attr-defined]
    model.to(dev)
    out_shape = probe(model, ds.train)
    ds = fit_targets(ds, out_shape, loss_task)
    part = ds.split(split)
    loss_fn = build_loss(loss_call, loss_context(ds, out_shape))
    model.eval()
    out = forward_all(model, part, cfg.eval_batch_size, contextlib.nullcontext())
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
    model.eval()
    device = next((p.device for p in model.parameters()), xs[0].device)
    net = model if preprocess is None else Preprocessed(model, preprocess, len(xs)).to(device)
    outs = []
    with torch.inference_mode():
        for i in range(0, len(xs[0]), batch_size):
            outs.append(net(*(t[i:i + batch_size].to(device) for t in xs)).float())
    return torch.cat(outs)


class Preprocessed(torch.nn.Module):
    """``model`` with the run's input normalisation before it and (regression) target scaling after it."""

    def __init__(self, model: torch.nn.Module, stats: dict[str, Any] | None, n_inputs: int):
        super().__init__()
        self.model = model
        norms = (stats or {}).get("inputs") or [{"method": "none"}] * n_inputs
        self.normalised = [n["method"] != "none" for n in norms]
        for i, n in enumerate(norms):  # buffers: exported with the weights, moved with the module
            self.register_buffer(f"shift_{i}", torch.as_tensor(n.get("shift", 0.0), dtype=torch.float32))
            self.register_buffer(f"scale_{i}", torch.as_tensor(n.get("scale", 1.0), dtype=torch.float32))
        self.regression = (stats or {}).get("task") == "regression"
        self.register_buffer("target_shift", torch.as_tensor((stats or {}).get("target_shift", 0.0),
                                                             dtype=torch.float32).reshape(-1))
        self.register_buffer("target_scale", torch.as_tensor((stats or {}).get("target_scale", 1.0),
                                                             dtype=torch.float32).reshape(-1))

    def normalise(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Raw inputs → the model's inputs, as in training (float inputs only; token ids pass)."""
        out = []
        for i, x in enumerate(xs):
            if self.normalised[i] and x.is_floating_point():  # the statistics keep a leading batch axis
                x = (x - getattr(self, f"shift_{i}")) / getattr(self, f"scale_{i}")
            out.append(x)
        return tuple(out)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        """The model's outputs for raw inputs; regression outputs in the data's units."""
        out = self.model(*self.normalise(*xs))
        if self.regression:
            out = (out.reshape(out.shape[0], -1) * self.target_scale + self.target_shift).reshape(out.shape)
        return out


__all__ = [
    "SCHEDULES",
    "FitResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "evaluate",
    "fit",
    "predict",
    "Preprocessed",
    "preprocess_info",
    "resolve_device",
    "seed_everything",
    "to_outputs",
]

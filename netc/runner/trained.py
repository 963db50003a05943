"""A trained run, ready for inference: the module with its trained weights and its preprocessing.

``netc.load_run(RUN_DIR)`` returns a :class:`TrainedRun`; ``netc export`` saves the same module and
statistics as ``netc predict`` uses them (``loop.Preprocessed``), so the exported file takes the raw
inputs ``netc predict`` takes and returns the outputs it computes (regression in the data's units).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netc.runner.config import TrainConfig
from netc.runner.loop import Preprocessed
from netc.runner.sources import Inputs


@dataclass
class TrainedRun:
    """A trained run: ``module`` (trained weights, eval mode), ``preprocess``, ``outputs`` and ``predict``."""

    module: torch.nn.Module  # the trained model (optimised for inference unless load_run(optimize=False))
    inputs: Inputs  # declared inputs: (name, per-sample shape, dtype)
    config: TrainConfig  # the run's resolved train config
    stats: dict[str, Any] | None  # config.json's preprocess entry: normalisation, task, class names
    run_dir: Path | None

    @property
    def wrapped(self) -> Preprocessed:
        """The module with preprocessing inside: raw inputs in, ``outputs`` out (what netc export saves)."""
        return Preprocessed(self.module, self.stats, len(self.inputs)).eval()

    @property
    def class_names(self) -> list[str] | None:
        """Classification: the name of each class id, as the training data called them."""
        return (self.stats or {}).get("class_names")

    def _tensors(self, xs: tuple[Any, ...]) -> tuple[torch.Tensor, ...]:
        if len(xs) != len(self.inputs):
            names = ", ".join(n for n, _, _ in self.inputs)
            raise TypeError(f"the model takes {len(self.inputs)} input(s) ({names}), got {len(xs)}")
        device = next((p.device for p in self.module.parameters()), torch.device("cpu"))
        from netc.runner.data import _fit_shape

        out = []
        for x, (name, shape, dtype) in zip(xs, self.inputs, strict=True):
            a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
            a = _fit_shape(a, tuple(shape), name, "load_run")  # e.g. (N, 64) pixels for a [1, 8, 8] input
            out.append(torch.from_numpy(np.ascontiguousarray(a)).to(device, torch.int64 if dtype == "int64"
                                                                     else torch.float32))
        return tuple(out)

    def preprocess(self, *xs: Any) -> tuple[torch.Tensor, ...]:
        """Raw inputs (arrays or tensors, one per model input, batch first) normalised as in training."""
        return self.wrapped.normalise(*self._tensors(xs))

    def outputs(self, *xs: Any, batch_size: int | None = None) -> torch.Tensor:
        """The model's outputs for raw inputs: logits for classification, data units for regression."""
        from netc.runner.loop import predict

        return predict(self.module, self._tensors(xs), batch_size=batch_size or self.config.eval_batch_size,
                       preprocess=self.stats)

    def predict(self, *xs: Any) -> np.ndarray:
        """Predictions for raw inputs: class ids for classification, values in the data's units otherwise."""
        out = self.outputs(*xs).cpu()
        if (self.stats or {}).get("task", "classification") != "classification":
            return out.numpy()
        if out.shape[-1:] == (1,):  # one logit: binary
            return (out[..., 0] > 0).long().numpy()
        return out.argmax(-1).numpy()


def load(run: str | Path, *, optimize: bool = True, device: str | None = "cpu") -> TrainedRun:
    """The trained run in ``run`` (a run directory, or a checkpoint inside one) for inference."""
    from netc.diagnostics import UsageError
    from netc.runner.cli import _gan_run, _load_run
    from netc.runner.rundir import RunDir

    if _gan_run(str(run)) is not None:
        raise UsageError(f"{run} is a GAN run; load_run and export take a supervised run",
                         hint=f"draw samples with netc predict {run} -n 16 -o samples.npy")
    model, inputs, cfg, stats = _load_run(str(run), None, None, device, optimize=optimize)
    model.eval()
    rd = RunDir.around(run)
    return TrainedRun(model, inputs, cfg, stats, rd.root if rd is not None else None)

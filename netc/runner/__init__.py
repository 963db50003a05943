"""The runner: data, objectives, metrics, checkpoints and the training loop.

Public API (re-exported lazily, so importing one submodule never imports the rest;
the ``train:`` config and vocabulary names live torch-free in ``netc.compiler.train``):

    TrainConfig, json_schema            config.py     the typed ``train:`` block (re-export)
    load_data, Dataset, Split           data.py       sources -> checked, split, normalised tensors
    fit, evaluate, predict, FitResult   loop.py       the training loop and its siblings
    fit_gan, generate                   gan.py        adversarial training (generator + discriminator)
    TrainingDiverged, TrainingInterrupted, seed_everything, resolve_device
    load_weights, save_checkpoint, load_state          checkpoint.py
    LOSSES, OPTIMIZERS, SCHEDULES       objectives.py
    METRICS                             metrics.py
    SOURCES                             sources.py
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrainConfig": "config", "DataConfig": "config", "SplitConfig": "config", "AugmentConfig": "config",
    "EarlyStoppingConfig": "config", "json_schema": "config",
    "load_data": "data", "Dataset": "data", "Split": "data",
    "fit": "loop", "evaluate": "loop", "predict": "loop", "FitResult": "loop", "TrainingDiverged": "loop",
    "TrainingInterrupted": "loop", "seed_everything": "loop", "resolve_device": "loop",
    "fit_gan": "gan", "generate": "gan",
    "load_weights": "checkpoint", "save_checkpoint": "checkpoint", "load_state": "checkpoint",
    "LOSSES": "objectives", "OPTIMIZERS": "objectives", "SCHEDULES": "objectives",
    "METRICS": "metrics", "SOURCES": "sources",
}

__all__ = [
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SOURCES",
    "AugmentConfig",
    "DataConfig",
    "Dataset",
    "EarlyStoppingConfig",
    "FitResult",
    "Split",
    "SplitConfig",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "evaluate",
    "fit",
    "fit_gan",
    "generate",
    "json_schema",
    "load_data",
    "load_state",
    "load_weights",
    "predict",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'netc.runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"netc.runner.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from netc.runner.checkpoint import load_state, load_weights, save_checkpoint
    from netc.runner.config import (
        AugmentConfig,
        DataConfig,
        EarlyStoppingConfig,
        SplitConfig,
        TrainConfig,
        json_schema,
    )
    from netc.runner.data import Dataset, Split, load_data
    from netc.runner.gan import fit_gan, generate
    from netc.runner.loop import (
        FitResult,
        TrainingDiverged,
        TrainingInterrupted,
        evaluate,
        fit,
        predict,
        resolve_device,
        seed_everything,
    )
    from netc.runner.metrics import METRICS
    from netc.runner.objectives import LOSSES, OPTIMIZERS, SCHEDULES
    from netc.runner.sources import SOURCES

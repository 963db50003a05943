"""Re-export: the train config lives, torch-free, in :mod:`netc.compiler.train.config`."""

from __future__ import annotations

from netc.compiler.train.config import (
    AugmentConfig,
    DataConfig,
    EarlyStoppingConfig,
    SplitConfig,
    TrainConfig,
    check_monitor,
    json_schema,
    opt,
    train_config,
    train_spans,
    with_overrides,
)

__all__ = ["AugmentConfig", "DataConfig", "EarlyStoppingConfig", "SplitConfig", "TrainConfig", "check_monitor",
           "json_schema", "opt", "train_config", "train_spans", "with_overrides"]

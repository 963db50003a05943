"""The ``train:`` block, torch-free: its typed config and the vocabulary it names.

    TrainConfig, train_config        config.py      the typed block, built from a checked program
    LOSSES, OPTIMIZERS, SCHEDULES    objectives.py  names and arguments (builders: netc.runner.objectives)
    METRICS                          metrics.py     names, tasks, directions (functions: netc.runner.metrics)
    SOURCES                          sources.py     data sources and their needs (readers: netc.runner.sources)
    resolve                          registry.py    call strings bound against a table
"""

from __future__ import annotations

from netc.compiler.train.config import TrainConfig, train_config
from netc.compiler.train.metrics import METRICS
from netc.compiler.train.objectives import LOSSES, OPTIMIZERS, SCHEDULES
from netc.compiler.train.registry import resolve
from netc.compiler.train.sources import SOURCES

__all__ = ["LOSSES", "METRICS", "OPTIMIZERS", "SCHEDULES", "SOURCES", "TrainConfig", "resolve", "train_config"]

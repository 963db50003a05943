"""Re-export: the vocabulary registry lives, torch-free, in :mod:`netc.compiler.train.registry`."""

from __future__ import annotations

from netc.compiler.train.registry import (
    REQUIRED,
    Bound,
    Entry,
    Param,
    call_schema,
    did_you_mean,
    implement,
    one_of,
    resolve,
    type_name,
)

__all__ = ["REQUIRED", "Bound", "Entry", "Param", "call_schema", "did_you_mean", "implement", "one_of", "resolve",
           "type_name"]

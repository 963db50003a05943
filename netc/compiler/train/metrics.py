"""The names of the metrics a run can log: task, direction, and whether they need probabilities.

``train.metrics`` is validated against ``METRICS`` and early stopping's "auto"
mode reads each metric's direction from it; the runner attaches the numpy
implementation of each name (``netc.runner.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from netc.compiler.train.registry import Table


@dataclass(frozen=True)
class Metric:
    """A scalar metric: its task, its direction and (in the runner) how to compute it.

    Installed packages add metrics through the ``netc.metrics`` entry-point group: a module with
    ``METRICS: list[Metric]``, each with ``fn(outputs) -> float`` set (``netc.runner.metrics.Outputs``).
    """

    name: str
    doc: str
    task: str  # "classification" (class ids + probabilities), "regression" (real values), "language", "seq2seq"
    mode: str  # "max" if larger is better, "min" otherwise
    fn: Callable[..., float] | None = field(default=None, repr=False)  # attached by netc.runner.metrics
    needs_probs: bool = False  # uses class probabilities, not just predicted ids


METRICS: Table[Metric] = Table("netc.metrics", "METRICS", {m.name: m for m in [
    Metric("accuracy", "fraction of samples whose predicted class is the true class", "classification", "max"),
    Metric("precision", "macro-averaged precision", "classification", "max"),
    Metric("recall", "macro-averaged recall", "classification", "max"),
    Metric("f1", "macro-averaged F1 score", "classification", "max"),
    Metric("auc_roc", "area under the ROC curve (one-vs-rest macro for several classes)", "classification",
           "max", needs_probs=True),
    Metric("mse", "mean squared error (original units)", "regression", "min"),
    Metric("mae", "mean absolute error (original units)", "regression", "min"),
    Metric("rmse", "root mean squared error (original units)", "regression", "min"),
    Metric("r2", "coefficient of determination", "regression", "max"),
    Metric("perplexity", "exp of the mean per-token cross-entropy (next-token prediction)", "language", "min"),
    Metric("bits_per_char", "cross-entropy of the whole text in bits per character of the original text "
                            "(comparable across tokenizers)", "language", "min"),
    Metric("next_token_accuracy", "fraction of positions whose most likely next token is the true one",
           "language", "max"),
    Metric("token_accuracy", "fraction of target tokens predicted right under teacher forcing", "seq2seq", "max"),
    Metric("exact_match", "fraction of targets whose greedy decoding equals the whole target text", "seq2seq",
           "max"),
]})

DEFAULT_METRICS = {"classification": ["accuracy", "f1"], "regression": ["rmse", "mae"],
                   "language": ["perplexity", "bits_per_char"], "seq2seq": ["token_accuracy", "exact_match"]}


def mode_of(name: str) -> str:
    """'min' or 'max': the direction in which ``name`` (a metric or 'loss') improves."""
    m = METRICS.get(name)
    return m.mode if m else "min"

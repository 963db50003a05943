"""Metrics over a whole split, computed once from collected outputs (numpy, on CPU).

The names (task, direction) are declared torch- and numpy-free in
``netc.compiler.train.metrics``; ``METRICS`` here attaches each one's function.
Definitions follow scikit-learn's (macro averages over the labels that occur in
the targets or predictions, one-vs-rest macro AUC, uniform average over
regression outputs) and the tests compare against it.

numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netc.compiler.train import metrics as declared
from netc.compiler.train.metrics import DEFAULT_METRICS, Metric, mode_of
from netc.compiler.train.registry import implement

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Outputs:
    """Everything a metric needs about one split's predictions (numpy arrays).

    Classification: ``y`` (n,) class ids, ``probs`` (n, C) probabilities,
    ``pred`` (n,) predicted ids. Regression: ``y`` and ``pred`` (n, k) in the
    data's original units, ``probs`` None.
    """

    task: str
    y: Any
    pred: Any
    probs: Any = None
    num_classes: int = 0


# ---------------------------------------------------------------- classification

def confusion_matrix(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts; row = true class, column = predicted class."""
    import numpy as np

    return np.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def per_class(o: Outputs) -> dict[str, np.ndarray]:
    """Per-class precision, recall, f1 and support (0 where undefined, as scikit-learn's zero_division=0)."""
    import numpy as np

    cm = confusion_matrix(o.y, o.pred, o.num_classes).astype(np.float64)
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = predicted + support
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def _present(o: Outputs) -> np.ndarray:
    """Labels that occur in the targets or the predictions (scikit-learn's macro average set)."""
    import numpy as np

    return np.union1d(np.unique(o.y), np.unique(o.pred))


def _macro(key: str) -> Callable[[Outputs], float]:
    def fn(o: Outputs) -> float:
        return float(per_class(o)[key][_present(o)].mean())

    fn.__name__ = f"macro_{key}"
    return fn


def accuracy(o: Outputs) -> float:
    return float((o.y == o.pred).mean())


def binary_auc(positive, scores) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    import numpy as np

    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    group_rank = np.cumsum(counts) - (counts - 1) / 2.0  # average 1-based rank of each tied group
    rank_sum = group_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auc_roc(o: Outputs) -> float:
    """Binary AUC of the positive class, or one-vs-rest macro AUC over classes seen in the targets."""
    import numpy as np

    if o.num_classes == 2:
        return binary_auc(o.y == 1, o.probs[:, 1])
    aucs = [binary_auc(o.y == c, o.probs[:, c]) for c in np.unique(o.y)]
    aucs = [a for a in aucs if not math.isnan(a)]  # classes without negatives (or positives) have no AUC
    return float(np.mean(aucs)) if aucs else float("nan")


# ---------------------------------------------------------------- regression

def _per_output(o: Outputs, fn) -> float:
    import numpy as np

    y = np.asarray(o.y, dtype=np.float64).reshape(len(o.y), -1)
    p = np.asarray(o.pred, dtype=np.float64).reshape(len(o.pred), -1)
    return float(np.mean([fn(y[:, j], p[:, j]) for j in range(y.shape[1])]))


def mse(o: Outputs) -> float:
    return _per_output(o, lambda y, p: ((y - p) ** 2).mean())


def mae(o: Outputs) -> float:
    return _per_output(o, lambda y, p: abs(y - p).mean())


def rmse(o: Outputs) -> float:
    return _per_output(o, lambda y, p: ((y - p) ** 2).mean() ** 0.5)


def _r2(y, p) -> float:
    ss_res = ((y - p) ** 2).sum()
    ss_tot = ((y - y.mean()) ** 2).sum()
    if ss_tot == 0:  # constant target: scikit-learn's force_finite convention
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def r2(o: Outputs) -> float:
    return _per_output(o, _r2)


# ---------------------------------------------------------------- language and sequence-to-sequence
# These read token counts summed over a whole split (netc.runner.language / seq2seq): ``nll`` (summed
# cross-entropy in nats), ``tokens``, ``chars`` (characters of the original text those tokens cover),
# ``correct`` (argmax hits), ``exact`` and ``sequences`` (whole targets decoded right).

def perplexity(s: dict[str, float]) -> float:
    return math.exp(min(s["nll"] / s["tokens"], 700.0))  # capped: exp overflows a float past ~709


def bits_per_char(s: dict[str, float]) -> float:
    return s["nll"] / (s["chars"] * math.log(2))


def token_accuracy(s: dict[str, float]) -> float:
    return s["correct"] / s["tokens"]


def exact_match(s: dict[str, float]) -> float:
    return s["exact"] / s["sequences"]


METRICS: dict[str, Metric] = implement(declared.METRICS, "fn", {
    "accuracy": accuracy, "precision": _macro("precision"), "recall": _macro("recall"), "f1": _macro("f1"),
    "auc_roc": auc_roc, "mse": mse, "mae": mae, "rmse": rmse, "r2": r2,
    "perplexity": perplexity, "bits_per_char": bits_per_char, "next_token_accuracy": token_accuracy,
    "token_accuracy": token_accuracy, "exact_match": exact_match,
})


def compute(o: Outputs, names: list[str]) -> dict[str, float]:
    """The named metrics for one split."""
    return {n: METRICS[n].fn(o) for n in names}


def report(o: Outputs, class_names: list[str] | None = None) -> dict:
    """Per-class table and confusion matrix (classification) for the evaluation report."""
    if o.task != "classification":
        return {}
    pc = per_class(o)
    names = class_names or [str(i) for i in range(o.num_classes)]
    return {
        "classes": names,
        "per_class": {names[c]: {"precision": float(pc["precision"][c]), "recall": float(pc["recall"][c]),
                                 "f1": float(pc["f1"][c]), "support": int(pc["support"][c])}
                      for c in range(o.num_classes)},
        "confusion_matrix": confusion_matrix(o.y, o.pred, o.num_classes).tolist(),
    }


__all__ = ["DEFAULT_METRICS", "METRICS", "Metric", "Outputs", "accuracy", "auc_roc", "binary_auc", "compute",
           "confusion_matrix", "mae", "mode_of", "mse", "per_class", "r2", "report", "rmse"]

"""PNG plots of a run: loss curves, metric curves, confusion matrix.

matplotlib is imported lazily and used through its object API with the Agg
canvas, so no GUI backend is touched and the global pyplot state is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")  # titles and labels never overlap
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    import io

    from netc.runner.checkpoint import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write(path, buf.getvalue())
    return path


# train and val of one quantity share a hue: dark for train, light for val (the tab20 pairs)
_PAIRS = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
          "#9467bd", "#c5b0d5", "#8c564b", "#c49c94"]


def _epochs_axis(ax, epochs: list[int]) -> None:
    """Whole-number epoch ticks (matplotlib would draw 0.5, 1.5, … for a short run)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    if epochs:
        ax.set_xlim(min(epochs) - 0.2, max(epochs) + 0.2)
    ax.grid(alpha=0.3)


def _curves(ax, history: list[dict[str, Any]], name: str, pair: int) -> None:
    """Train and val of ``name`` on ``ax``, in the ``pair``-th colour pair."""
    for k, split in enumerate(("train", "val")):
        pts = [(r["epoch"], r[split][name]) for r in history if (r.get(split) or {}).get(name) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", markersize=3, color=_PAIRS[(2 * pair + k) % len(_PAIRS)],
                    linestyle="-" if split == "train" else "--", label=split)


def _title(run: str | None, what: str) -> str:
    return f"{run}: {what}" if run else what


def loss_curves(history: list[dict[str, Any]], path: Path, run: str | None = None) -> Path:
    """Train and validation loss per epoch."""
    fig = _figure()
    ax = fig.add_subplot()
    _curves(ax, history, "loss", 0)
    _epochs_axis(ax, [r["epoch"] for r in history])
    ax.set_ylabel("loss")
    ax.set_title(_title(run, "loss (train and validation)"))
    ax.legend()
    return _save(fig, path)


def metric_curves(history: list[dict[str, Any]], path: Path, run: str | None = None) -> Path | None:
    """One panel per logged metric, train and validation in one colour pair."""
    names = [k for k in (history[0].get("train") or {}) if k != "loss"] if history else []
    if not names:
        return None
    cols = min(len(names), 3)
    rows = (len(names) + cols - 1) // cols
    fig = _figure(4.0 * cols, 3.2 * rows)
    epochs = [r["epoch"] for r in history]
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        _curves(ax, history, name, i + 1)
        _epochs_axis(ax, epochs)
        ax.set_title(name)
        ax.legend(fontsize="small")
    fig.suptitle(_title(run, "metrics (train and validation)"))
    return _save(fig, path)


def confusion(matrix: list[list[int]], classes: list[str], path: Path, run: str | None = None,
              split: str = "test") -> Path:
    """Confusion matrix heat map with counts (rows: true class, columns: predicted) of one split."""
    n = len(classes)
    size = min(12.0, 2.5 + 0.45 * n)
    fig = _figure(size, size)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, label="samples")
    ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = sum(sum(r) for r in matrix)
    right = sum(matrix[i][i] for i in range(min(n, len(matrix))))
    ax.set_title(_title(run, f"confusion matrix, {split} split ({total:,} samples, {right:,} correct)"))
    if n <= 30:
        top = max((max(r) for r in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if top and v > top / 2 else "black")
    return _save(fig, path)


def sample_grid(samples, path: Path, columns: int = 8) -> Path:
    """Generated images (n, C, H, W) in data units as one grid, each image scaled to its own range."""
    import numpy as np

    x = np.asarray(samples, dtype=np.float64)
    n, c = x.shape[:2]
    rows = (n + columns - 1) // columns
    fig = _figure(columns * 0.9, rows * 0.9)
    for i in range(n):
        ax = fig.add_subplot(rows, columns, i + 1)
        img = x[i].transpose(1, 2, 0) if c == 3 else x[i, 0]
        lo, hi = img.min(), img.max()
        ax.imshow((img - lo) / (hi - lo) if hi > lo else img * 0, cmap="gray" if c == 1 else None)
        ax.axis("off")
    return _save(fig, path)

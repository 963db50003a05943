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

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    import io

    from netc.runner.checkpoint import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write(path, buf.getvalue())
    return path


def loss_curves(history: list[dict[str, Any]], path: Path) -> Path:
    """Train and validation loss per epoch."""
    fig = _figure()
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for split in ("train", "val"):
        ys = [r[split]["loss"] for r in history if r.get(split)]
        if ys:
            ax.plot(epochs[:len(ys)], ys, marker="o", label=f"{split} loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def metric_curves(history: list[dict[str, Any]], path: Path) -> Path | None:
    """One line per logged metric and split."""
    names = [k for k in (history[0].get("train") or {}) if k != "loss"] if history else []
    if not names:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for name in names:
        for split in ("train", "val"):
            ys = [r[split][name] for r in history if r.get(split) and name in r[split]]
            if ys:
                ax.plot(epochs[:len(ys)], ys, marker=".", linestyle="-" if split == "val" else "--",
                        label=f"{split}.{name}")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def confusion(matrix: list[list[int]], classes: list[str], path: Path) -> Path:
    """Confusion matrix heat map with counts (rows: true class, columns: predicted)."""
    n = len(classes)
    size = min(12.0, 2.0 + 0.45 * n)
    fig = _figure(size, size)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
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

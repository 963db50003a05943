"""The names of the data sources ``train.data`` can read, and what each one needs.

``train.data`` is validated against ``SOURCES`` (a file source needs a path, an
embedded one takes none, only series take a window); the runner attaches each
source's reader (``netc.runner.sources``). No numpy here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """A named data source: what it is, what it needs, (in the runner) how to read it."""

    name: str
    doc: str
    read: Callable[..., Any] | None = field(default=None, repr=False)  # attached by netc.runner.sources
    task: str = "classification"  # classification | regression | any (decided by the loss / targets)
    needs_path: bool = False
    series: bool = False  # 1-D series cut into windows, split chronologically
    normalize: str = "standard"  # default of train.normalize
    example: str = ""  # example path for hints


SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("digits", "8x8 handwritten digits from scikit-learn (1797 samples, 10 classes, embedded)"),
    Source("sunspots", "yearly sunspot activity 1700-2008 from statsmodels (forecasting, embedded)",
           task="regression", series=True),
    Source("co2", "weekly Mauna Loa CO2 1958-2001 from statsmodels, gaps interpolated (forecasting, embedded)",
           task="regression", series=True),
    Source("idx", "MNIST-style IDX files (train-images-idx3-ubyte[.gz] etc.)", needs_path=True,
           normalize="minmax", example="data/mnist"),
    Source("cifar10", "CIFAR-10 python batches (data_batch_1..5, test_batch)", needs_path=True,
           normalize="minmax", example="data/cifar-10-batches-py"),
    Source("npz", "numpy .npz with arrays x and y (names configurable)", task="any", needs_path=True,
           example="data/train.npz"),
    Source("csv", "CSV with a header row: numeric feature columns and a label column", task="any",
           needs_path=True, example="data/train.csv"),
    Source("folder", "image folders, one subfolder per class (PNG/JPEG, resized to the declared input)",
           needs_path=True, normalize="minmax", example="data/images"),
]}


def infer_source(path: str) -> str:
    """Guess the source of ``data: <path>`` from the file name or directory contents."""
    p = Path(path).expanduser()
    name = p.name.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if "ubyte" in name or name.endswith(".idx"):
        return "idx"
    if p.is_dir():
        names = {c.name for c in p.iterdir()}
        if "data_batch_1" in names or "test_batch" in names:
            return "cifar10"
        if any("ubyte" in n for n in names):
            return "idx"
    return "folder"
